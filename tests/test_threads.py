"""``run.threads``: the ``auto`` rule (processors, SLURM, the register of running pipelines), an
explicit count, bad values, and the line a stage prints at its start."""
import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from genlib.config import load
from genlib.errors import ConfigError
from genlib.pipeline import threads
from genlib.pipeline.runner import stage_main
from genlib.pipeline.threads import registered, resolve, running, threads_set

from test_config import ROOT


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """Four processors whose idle time is not known, no SLURM or OpenMP variable, an empty
    register; returns its folder."""
    monkeypatch.setattr(threads, "cpus", lambda: {0, 1, 2, 3})
    monkeypatch.setattr(threads, "idle_processors", lambda mine: None)  # not measured (not Linux)
    for name in ("SLURM_CPUS_PER_TASK", "SLURM_JOB_ID", "OMP_NUM_THREADS", "DVC_STAGE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "running"


@pytest.fixture
def sleeper():
    """A live process other than this one."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def enter(folder, pid, cpus=(0, 1, 2, 3), job=None, started="from /proc"):
    """A register file as a running pipeline ``pid`` writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    if started == "from /proc":
        started = threads._stat(pid)[2]
    (folder / str(pid)).write_text(json.dumps({"started": started, "cpus": list(cpus), "job": job}))


def test_auto_takes_every_processor_of_a_lone_stage(machine):
    with registered(machine):
        assert resolve("auto", machine) == (4, "4 processors, 1 genlib pipeline running")
    assert not list(machine.iterdir())  # a stage started by hand takes its file away


def test_auto_is_capped_by_slurm_cpus_per_task(machine, monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")
    assert resolve("auto", machine) == (2, "2 processors (SLURM_CPUS_PER_TASK), 1 genlib pipeline running")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "16")  # more than this process may use: the affinity wins
    assert resolve("auto", machine)[0] == 4


def test_auto_takes_no_more_than_the_idle_processors(machine, monkeypatch):
    monkeypatch.setattr(threads, "idle_processors", lambda mine: 1.2)  # other work on the machine
    assert resolve("auto", machine) == (1, "4 processors, 1.2 idle, 1 genlib pipeline running")
    monkeypatch.setattr(threads, "idle_processors", lambda mine: 0.1)
    assert resolve("auto", machine)[0] == 1  # at least one
    monkeypatch.setattr(threads, "idle_processors", lambda mine: 3.9)
    assert resolve("auto", machine)[0] == 4


@pytest.mark.skipif(not os.path.isfile("/proc/stat"), reason="Linux only")
def test_idle_processors_are_measured_on_this_processes_processors():
    mine = threads.cpus()
    idle = threads.idle_processors(mine, seconds=0.05)
    assert 0.0 <= idle <= len(mine)
    assert threads.idle_processors({10**6}) is None  # no such processor


def test_auto_is_capped_by_omp_num_threads(machine, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert resolve("auto", machine) == (1, "4 processors, 1 genlib pipeline running, OMP_NUM_THREADS=1")


def test_auto_shares_the_processors_among_the_running_pipelines(machine, sleeper):
    enter(machine, sleeper)
    with registered(machine):
        assert running(machine) == 2
        assert resolve("auto", machine) == (2, "4 processors, 2 genlib pipelines running")


def test_three_pipelines_on_two_processors_get_one_thread_each(machine, monkeypatch, sleeper):
    monkeypatch.setattr(threads, "cpus", lambda: {0, 1})
    enter(machine, sleeper, cpus=(0, 1))
    enter(machine, os.getppid(), cpus=(1,))  # shares processor 1
    with registered(machine):
        assert resolve("auto", machine) == (1, "2 processors, 3 genlib pipelines running")


def test_a_dead_pipelines_file_is_ignored_and_removed(machine):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    enter(machine, proc.pid, started=None)
    with registered(machine):
        assert running(machine) == 1
    assert not (machine / str(proc.pid)).exists()


def test_a_reused_pid_is_told_apart_by_its_start_time(machine, sleeper):
    enter(machine, sleeper, started="12345")  # the pid of a pipeline long gone, now another process's
    assert running(machine) == 1
    assert not (machine / str(sleeper)).exists()


def test_pipelines_on_other_processors_or_in_another_slurm_job_are_not_counted(machine, monkeypatch, sleeper):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    with registered(machine):
        enter(machine, sleeper, cpus=(4, 5), job="42")
        assert running(machine) == 1
        enter(machine, sleeper, job="41")
        assert running(machine) == 1
        enter(machine, sleeper, job="42")
        assert running(machine) == 2


def test_under_dvc_the_pipeline_is_the_process_that_runs_the_shell(tmp_path):
    """DVC runs a stage as ``$SHELL -c cmd``: the register holds the dvc process (here, pytest)
    between stages too, and the stage leaves its file in place."""
    stage = tmp_path / "stage.py"
    stage.write_text("import sys\nfrom pathlib import Path\nfrom genlib.pipeline.threads import registered, pipeline_pid\n"
                     "with registered(Path(sys.argv[1])):\n    print(pipeline_pid())\n")
    env = {**os.environ, "DVC_STAGE": "train", "PYTHONPATH": str(ROOT)}
    cmd = f"{sys.executable} {stage} {tmp_path / 'running'}; true"  # '; true': the shell stays
    out = subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout) == os.getpid()
    assert [p.name for p in (tmp_path / "running").iterdir()] == [str(os.getpid())]


def test_an_explicit_count_is_used_as_given(machine):
    assert resolve(3, machine) == (3, "run.threads")


def test_threads_set_sets_the_count_and_puts_it_back():
    before = torch.get_num_threads()
    with threads_set(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("value", [0, -2, "many", True, 1.5])
def test_a_bad_value_is_a_one_line_config_error(value):
    with pytest.raises(ConfigError) as err:
        load(ROOT / "params.yaml", {"run.threads": value})
    assert err.value.key == "run.threads" and "\n" not in str(err.value)
    assert load(ROOT / "params.yaml", {"run.threads": 2}).run.threads == 2


def test_a_bad_value_stops_the_stage_with_one_line(tmp_path, capsys):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["run"]["threads"] = "many"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit) as exit:
        stage_main("config", lambda cfg: None, str(tmp_path / "params.yaml"))
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {tmp_path / 'params.yaml'}: run.threads = 'many' is not allowed")


@pytest.mark.parametrize("progress, line", [("auto", "threads: 1 (run.threads)\n"), ("never", "")])
def test_a_stage_says_its_threads_at_its_start(tmp_path, capsys, progress, line):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["run"].update(threads=1, progress=progress)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    seen = []
    before = torch.get_num_threads()
    stage_main("config", lambda cfg: seen.append(torch.get_num_threads()), str(tmp_path / "params.yaml"))
    assert seen == [1] and torch.get_num_threads() == before
    assert capsys.readouterr().err == line
