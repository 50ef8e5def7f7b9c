"""``genlib sweep`` against a real SLURM: the README's "Several machines" block pasted in order
into a tiny project whose origin is a bare repository in tmp, on a single-node cluster.

The cluster is the one ``sinfo`` reaches, or else one this module starts with ``.ci/slurm.sh``
(installing ``slurm-wlm`` and ``munge`` when ``sbatch`` is missing) and stops at the end. The
tests skip only where SLURM is missing and cannot be installed (not root, or no apt-get).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dvc_project import ROOT, block, env_for, make_repo
from genlib.pipeline.worker import SPAN, torchrun_command
from genlib.sweep import SweepError
from genlib.sweep.grid import Cell
from genlib.sweep.plan import Plan, plan_file, save
from genlib.sweep.slurm import Resources, script, states
from genlib.sweep.status import cell_states, last_error

pytestmark = pytest.mark.e2e
SCRIPT = ROOT / ".ci" / "slurm.sh"
TINY_RUN = {"run": {"threads": 1}}


def _answers(env: dict) -> bool:
    try:
        return subprocess.run(["sinfo", "-h"], env=env, capture_output=True, timeout=20).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


def _free_port_pair() -> int:
    """A port p with p and p + 1 free (slurmctld's and slurmd's)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port + 1)) != 0:
                return port
    raise RuntimeError("no two free consecutive ports")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """The environment variables that reach a working cluster."""
    if _answers(dict(os.environ)):
        yield {}
        return
    if shutil.which("sbatch") is None and (os.geteuid() != 0 or shutil.which("apt-get") is None):
        pytest.skip("SLURM is not installed and cannot be here: installing slurm-wlm and munge needs root and apt-get")
    folder = tmp_path_factory.mktemp("slurm")
    env = dict(os.environ, SLURM_TEST_PORT=str(_free_port_pair()))
    out = subprocess.run(["bash", str(SCRIPT), "start", str(folder)], env=env, capture_output=True, text=True)
    try:
        assert out.returncode == 0, f".ci/slurm.sh start failed:\n{out.stdout}\n{out.stderr}"
        yield {"SLURM_CONF": str(folder / "slurm.conf")}
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(folder)], capture_output=True)


class Project:
    """A tiny project with a bare origin, and the commands to drive it."""

    def __init__(self, root: Path, slurm_env: dict):
        origin = root / "origin.git"
        subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
        self.path, _ = make_repo(root / "project", TINY_RUN)
        self.env = {**env_for(self.path), **slurm_env, "OMP_NUM_THREADS": "1"}
        self.run("git remote add origin ../origin.git")

    def run(self, command: str, check: bool = True) -> str:
        out = subprocess.run(["bash", "-c", command], cwd=self.path, env=self.env, capture_output=True, text=True)
        assert not check or out.returncode == 0, f"`{command}` failed:\n{out.stdout}\n{out.stderr}"
        return out.stdout + out.stderr

    def plan(self, name: str) -> dict:
        return json.loads((self.path / ".genlib" / "sweeps" / f"{name}.json").read_text())

    def log(self, name: str, i: int) -> str:
        return (self.path / ".genlib" / "sweeps" / name / "logs" / f"{i}.log").read_text()

    def cell(self, name: str, i: int) -> Path:
        return self.path / ".genlib" / "sweeps" / name / "cells" / str(i)

    def wait(self, name: str, timeout: float = 900, succeed: bool = True) -> str:
        """``genlib sweep --status`` once no cell is queued or running; with ``succeed``, fails
        unless every cell reached the origin."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            status = self.run(f"genlib sweep --status {name}")
            if not any(s in status for s in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "REQUEUE")):
                break
            time.sleep(3)
        assert not succeed or "not in origin" not in status, status
        return status

    def when_resumable(self, name: str) -> None:
        """Wait until cell 0 of ``name`` has written a resume checkpoint."""
        resume = self.cell(name, 0) / ".genlib" / "resume"
        deadline = time.time() + 300
        while not list(resume.glob("train-*.pt")) and time.time() < deadline:
            time.sleep(0.5)
        assert list(resume.glob("train-*.pt")), self.log(name, 0)


@pytest.fixture(scope="module")
def swept(slurm, tmp_path_factory):
    """The README's block run as written; the project and each command's output."""
    project = Project(tmp_path_factory.mktemp("sweep"), slurm)
    outputs = {}
    for command in block("Several machines"):
        if command.startswith("genlib sweep --status"):
            outputs[command] = project.wait(command.split()[-1])
            continue
        outputs[command] = project.run(command)
    return project, outputs


def test_every_cell_reaches_the_origin_and_the_comparison(swept):
    project, outputs = swept
    origin_refs = project.run("git ls-remote ../origin.git 'refs/exps/*'")
    assert sorted(r.rsplit("/", 1)[1] for r in origin_refs.split()[1::2]) == ["grid-1", "grid-2", "grid-3", "grid-4"]
    show = next(out for command, out in outputs.items() if command.startswith("dvc exp show"))
    assert all(f"grid-{i}" in show for i in range(1, 5)), show
    compare = (project.path / "compare" / "compare.md").read_text()
    assert "4 experiments with metrics" in compare and "dlpm" in compare


def test_twin_cells_train_once(swept):
    project, _ = swept
    logs = [project.log("grid", i) for i in range(4)]
    trained = [i for i, log in enumerate(logs) if "Running stage 'train'" in log]
    restored = [i for i, log in enumerate(logs) if "Stage 'train' is cached" in log]
    # the cells: ddpm with 10 and 20 reverse steps, then dlpm with 10 and 20: one training each
    assert len(trained) == 2 and {0, 1} & set(trained) and {2, 3} & set(trained), trained
    assert sorted(trained + restored) == [0, 1, 2, 3]
    # twins 0 and 1 start together on the node's two CPUs: one waits for the other's lock
    assert any("waiting for the training of key" in log for log in logs[:2]), logs[0] + logs[1]


def test_a_repeated_cell_does_not_train(swept):
    project, _ = swept
    project.run("genlib sweep again -S method=ddpm -S eval.reverse_steps=10 --cpus-per-task 1 --cache-type hardlink,symlink")
    project.wait("again")
    log = project.log("again", 0)
    assert "Running stage 'train'" not in log and "Stage 'train' is cached" in log, log
    assert "Running stage 'evaluate'" not in log  # the whole pipeline was in the run cache
    first = next(i for i in range(4) if "eval.reverse_steps=10" in " ".join(project.plan("grid")["cells"][i]["overrides"])
                 and "method=ddpm" in project.plan("grid")["cells"][i]["overrides"])
    for metrics in ("metrics/train.json", "metrics/eval.json"):
        assert (project.cell("again", 0) / metrics).read_text() == (project.cell("grid", first) / metrics).read_text()


def test_a_failed_cells_error_is_in_the_status(swept):
    project, _ = swept
    project.run("genlib sweep bad -S method=ddpm -S optim.lr=1e30 -S training.nan_retries=0 --cpus-per-task 1")
    status = project.wait("bad", succeed=False)
    cell, error = status.splitlines()[1:3]
    assert "FAILED" in cell and "not in origin" in cell, status
    assert error.strip().startswith("error: training: the loss was non-finite"), status
    assert "--resubmit bad" in status


LONG = "-S method=ddpm -S training.epochs=120 -S run.checkpoint_freq=20 --cpus-per-task 1"  # 960 steps


def result(project: Project, name: str) -> tuple:
    """Cell 0's training steps, final loss and evaluation metrics (but times)."""
    train = json.loads((project.cell(name, 0) / "metrics" / "train.json").read_text())
    evals = json.loads((project.cell(name, 0) / "metrics" / "eval.json").read_text())
    return train["train_steps"], train["final_loss"], {k: v for k, v in evals.items() if not k.endswith("_time_s")}


@pytest.fixture(scope="module")
def uninterrupted(swept):
    """``LONG`` run once without interruption (in a cache of its own, so that it trains):
    submitted here, awaited by the first test that asks for the result."""
    project, _ = swept
    project.run(f"genlib sweep ref {LONG} --cache ../ref-cache")
    done: list[tuple] = []

    def get() -> tuple:
        if not done:
            project.wait("ref")
            done.append(result(project, "ref"))
        return done[0]

    return get


def test_a_killed_cell_resumes_to_the_uninterrupted_result(swept, uninterrupted):
    """One cell is cancelled (`scancel`) and submitted again (`--resubmit`), another is requeued by
    the scheduler as a preemption would (`scontrol requeue`, with --requeue): both continue from
    their checkpoints and end where a run never interrupted ends. Each has its own cache, so each
    trains."""
    project, _ = swept
    cell = LONG
    project.run(f"genlib sweep long {cell}")
    project.when_resumable("long")
    project.run(f"scancel {project.plan('long')['jobs'][-1]['id']}")
    deadline = time.time() + 120
    while "CANCELLED" not in (status := project.run("genlib sweep --status long")) and time.time() < deadline:
        time.sleep(1)
    assert "CANCELLED" in status and "not in origin" in status, status
    assert "CANCELLED" in status.splitlines()[2] and "--resubmit long" in status, status  # the scheduler's line
    assert "submitted again" in project.run("genlib sweep --resubmit long")
    project.run(f"genlib sweep pre {cell} --requeue --cache ../pre-cache")
    project.when_resumable("pre")
    task = f"{project.plan('pre')['jobs'][-1]['id']}_0"
    project.run(f"scontrol requeue {task}")
    deadline = time.time() + 60  # the requeue ends the running attempt first
    while (state := project.run(f"squeue -h -j {task} -o %T").strip()) != "PENDING" and time.time() < deadline:
        time.sleep(0.5)
    assert state == "PENDING", f"{task} after scontrol requeue: {state}"
    # Not the 2 minutes a requeued job waits, but not within the second its credential was revoked
    # either: slurmd refuses a launch whose credential is no newer, in whole seconds, than the
    # revocation ("Job credential revoked"), and the task would end FAILED without running.
    time.sleep(2)
    project.run(f"scontrol update JobId={task} StartTime=now")
    for name in ("long", "pre"):
        project.wait(name)
    assert "attempt 2" in project.log("pre", 0)
    for name in ("long", "pre"):
        assert "resuming training from .genlib/resume/train-" in project.log(name, 0), project.log(name, 0)
    assert result(project, "long") == uninterrupted() == result(project, "pre") and uninterrupted()[0] == 960


def tree(pids: list[str]) -> list[str]:
    """``pids`` and all their descendants, parents first."""
    out, i = list(pids), 0
    while i < len(out):
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", out[i]], capture_output=True, text=True).stdout.split()
        out += [c for c in children if c not in out]
        i += 1
    return out


def test_a_cell_past_its_time_limit_resumes_to_the_uninterrupted_result(swept, uninterrupted):
    """The scheduler kills a cell at its time limit (state TIMEOUT); submitted again, it continues
    from its checkpoint to the uninterrupted result. The limit is lowered to one minute
    (`scontrol update TimeLimit=1`) once the cell has a checkpoint, and the job's processes are
    held (SIGSTOP, `scontrol listpids`) until the controller's check (every 30 s) kills them: the
    whole training takes about 12 s, less than the limit could catch otherwise."""
    project, _ = swept
    project.run(f"genlib sweep late {LONG} --time 10:00 --cache ../late-cache")
    project.when_resumable("late")
    job = f"{project.plan('late')['jobs'][-1]['id']}_0"
    job_id = project.run(f"squeue -h -j {job} -o %A").strip()  # listpids takes the task's own id
    project.run(f"kill -STOP {' '.join(tree(project.run(f'scontrol listpids {job_id}').split()[5::5]))}")
    project.run(f"scontrol update JobId={job} TimeLimit=1")
    deadline = time.time() + 150
    while "TIMEOUT" not in (status := project.run("genlib sweep --status late")) and time.time() < deadline:
        time.sleep(2)
    assert "TIMEOUT" in status and "not in origin" in status, status
    assert "DUE TO TIME LIMIT" in project.log("late", 0)
    assert "submitted again" in project.run("genlib sweep --resubmit late")
    project.wait("late")
    assert "resuming training from .genlib/resume/train-" in project.log("late", 0), project.log("late", 0)
    assert result(project, "late") == uninterrupted()


def test_a_two_process_cell_spans_the_jobs_nodes_as_it_trains_here(swept):
    """A cell with run.nproc_per_node=2 trains under srun, one torchrun per node of its job
    meeting at a c10d rendezvous (one node here), to what torchrun --standalone gets on this
    machine from the same clone. The job also shows the --mem and --sbatch lines it was given."""
    project, _ = swept
    project.run("genlib sweep dist -S method=ddpm -S run.nproc_per_node=2 --nodes 1 --cpus-per-task 2 --mem 200M "
                "--sbatch=--comment=genlib-test --sbatch 'echo the extra line ran' --cache ../dist-cache")
    project.wait("dist")
    log = project.log("dist", 0)
    assert "the extra line ran" in log, log
    assert "training on 1 node(s) x 2 processes: srun starts torchrun on each, rendezvous at " in log, log
    shown = project.run(f"scontrol show job {project.plan('dist')['jobs'][-1]['id']}")
    for field in ("MinMemoryNode=200M", "Comment=genlib-test", "NumNodes=1", "NumCPUs=2", "JobState=COMPLETED"):
        assert field in shown, shown
    clone = project.cell("dist", 0)
    swept_train = json.loads((clone / "metrics" / "train.json").read_text())
    project.run(f"cd {clone} && dvc repro --force -s train")  # here, outside SLURM: torchrun --standalone
    local_train = json.loads((clone / "metrics" / "train.json").read_text())
    assert swept_train["train_steps"] == local_train["train_steps"] == 24  # 3 epochs of 2048 / 256
    assert {k: v for k, v in swept_train.items() if not k.endswith("_time_s")} == \
        {k: v for k, v in local_train.items() if not k.endswith("_time_s")}


def test_a_gpu_request_this_cluster_cannot_meet_is_refused_in_one_line(swept):
    """--gpus reaches sbatch as written; the test cluster has no GPU (no GRES), so sbatch refuses it."""
    project, _ = swept
    out = project.run("genlib sweep gpu -S method=ddpm --gpus 1", check=False)
    assert out.strip() == "error: sweep: sbatch refused the job: sbatch: error: Invalid generic resource (gres) specification", out


def test_without_accounting_the_status_falls_back_on_the_tasks_records(slurm, tmp_path, monkeypatch):
    """The test cluster keeps no accounting database: sacct answers nothing, and a job the
    controller does not know has, cell by cell, the state its task recorded."""
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    job = "987654"
    sacct = subprocess.run(["sacct", "-n", "-P", "-X", "-j", job], capture_output=True, text=True)
    assert sacct.returncode != 0 and sacct.stdout == "" and "accounting storage is disabled" in sacct.stderr, sacct
    assert states(job) == {}
    plan = Plan("f", "ab" * 20, str(tmp_path / "none.git"), str(tmp_path / "cache"), str(tmp_path / "work"), "/venv/bin",
                [Cell(i, f"f-{i + 1}", (), "k") for i in range(4)], jobs=[{"id": job, "cells": [0, 1, 2, 3]}])
    for i, state in enumerate(("done", "failed", "running")):
        plan.state_file(i).parent.mkdir(parents=True, exist_ok=True)
        plan.state_file(i).write_text(json.dumps({"state": state}))
    assert [r["state"] for r in cell_states(plan)] == ["DONE", "FAILED", "ENDED", "NOT STARTED"]


def test_no_answer_from_the_controller_is_refused_not_read_as_every_cell_ended(slurm, tmp_path, monkeypatch):
    """The cluster's configuration with its controller on a port nothing listens on: squeue and
    scontrol fail ("Unable to contact slurm controller"). --status and --resubmit refuse in one
    line; had the states read as the tasks' own records, --resubmit would submit running cells."""
    conf = Path(slurm.get("SLURM_CONF") or os.environ.get("SLURM_CONF") or "/etc/slurm/slurm.conf").read_text()
    port = _free_port_pair()
    lines = [line for line in conf.splitlines() if not line.startswith(("SlurmctldPort=", "SlurmdPort=", "MessageTimeout="))]
    (tmp_path / "dead.conf").write_text("\n".join(lines + [f"SlurmctldPort={port}", f"SlurmdPort={port + 1}",
                                                           "MessageTimeout=1"]) + "\n")
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "dead.conf"))
    with pytest.raises(SweepError, match=r"^scontrol got no answer from the scheduler \(.*Unable to contact slurm "
                                         r"controller.*\): the cells' states are unknown"):
        states("4242")
    project = tmp_path / "project"
    plan = Plan("d", "ab" * 20, str(tmp_path / "none.git"), str(tmp_path / "cache"), str(project / ".genlib" / "sweeps" / "d"),
                "/venv/bin", [Cell(0, "d-1", (), "k")], jobs=[{"id": "4242", "cells": [0]}])
    plan.state_file(0).parent.mkdir(parents=True)
    plan.state_file(0).write_text(json.dumps({"state": "running"}))  # its task still runs, as far as we know
    save(plan, project)
    before = plan_file(project, "d").read_text()
    for flag in ("--status", "--resubmit"):
        out = subprocess.run([str(Path(sys.executable).with_name("genlib")), "sweep", flag, "d"], cwd=project, capture_output=True, text=True)
        assert out.returncode != 0 and out.stdout == "", out
        assert out.stderr.startswith("error: sweep: scontrol got no answer from the scheduler") and out.stderr.count("\n") == 1, out
    assert plan_file(project, "d").read_text() == before  # no job added


def test_torchrun_spans_the_jobs_nodes_only_when_the_job_script_asks(slurm, monkeypatch):
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    for key in (SPAN, "SLURM_JOB_ID"):
        monkeypatch.delenv(key, raising=False)
    assert torchrun_command(2)[-2:] == ["--nproc_per_node=2", "--standalone"]
    monkeypatch.setenv("SLURM_JOB_ID", "77")  # in a job, not asked: this machine alone
    assert torchrun_command(2)[-1] == "--standalone"
    for key, value in ((SPAN, "1"), ("SLURM_JOB_NUM_NODES", "2"), ("SLURM_JOB_NODELIST", "n[3-4]"), ("SLURM_CPUS_PER_TASK", "3")):
        monkeypatch.setenv(key, value)
    cmd = torchrun_command(4)
    assert cmd[:6] == ["srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--cpus-per-task=3"]
    assert {"--nproc_per_node=4", "--nnodes=2", "--rdzv_backend=c10d", "--rdzv_id=genlib-77"} <= set(cmd)
    assert "--standalone" not in cmd
    host, port = next(a for a in cmd if a.startswith("--rdzv_endpoint=")).split("=", 1)[1].split(":")
    assert host == "n3" and int(port) > 0  # the first node of n3,n4


def test_the_last_error_line_of_a_log_is_the_cells_error():
    log = ("Running stage 'train':\nerror: params.yaml: first problem\nerror: data/prepared/train.npy: the real one\n"
           "ERROR: failed to reproduce 'train': failed to run: python stages/train.py, exited with 2\n")
    assert last_error(log) == "data/prepared/train.npy: the real one"
    assert last_error("ERROR: failed to reproduce 'train'\n") == "failed to reproduce 'train'"
    killed = "Running stage 'train':\nslurmstepd-vm: error: *** JOB 15 ON vm CANCELLED AT 2026-12-02T05:53:51 ***\n"
    assert last_error(killed) == "*** JOB 15 ON vm CANCELLED AT 2026-12-02T05:53:51 ***"


def test_the_job_script_asks_for_what_was_given(tmp_path):
    plan = Plan("s", "ab" * 20, "/srv/origin.git", "/srv/cache", str(tmp_path / "work"), "/venv/bin",
                [Cell(0, "s-1", ("seed=0",), "k"), Cell(1, "s-2", ("seed=1",), "k")])
    text = script(plan, Resources(partition="gpu", time="1:00:00", cpus_per_task=4, gpus="a100:1", mem="16G", requeue=True,
                                  extra=("--account=abc", "module load cuda")))
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=1:00:00", "#SBATCH --cpus-per-task=4", "#SBATCH --gpus=a100:1",
                 "#SBATCH --mem=16G", "#SBATCH --requeue", "#SBATCH --account=abc", "#SBATCH --open-mode=append",
                 f"#SBATCH --output={tmp_path}/work/logs/%a.log", "module load cuda"):
        assert line in text.splitlines(), line
    assert text.index("#SBATCH --account=abc") < text.index("set -euo pipefail") < text.index("module load cuda")
    assert f"git checkout -q --force --detach {'ab' * 20}" in text and "export PATH=/venv/bin:" in text
    assert "#SBATCH" not in script(plan, Resources()).split("#SBATCH --open-mode=append")[1]
    wide = script(plan, Resources(nodes=2, cpus_per_task=8)).splitlines()
    assert "#SBATCH --nodes=2" in wide and "#SBATCH --ntasks-per-node=1" in wide and "#SBATCH --cpus-per-task=8" in wide
    assert any(line.startswith("export ") and "GENLIB_SPAN_NODES=1" in line for line in wide)


def test_a_sweep_is_refused_before_submitting(tmp_path):
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    path, sh = make_repo(tmp_path / "project")
    sh("git", "remote", "add", "origin", str(origin))

    def sweep(*args):
        out = subprocess.run(["genlib", "sweep", *args], cwd=path, env=env_for(path), capture_output=True, text=True)
        assert out.returncode == 2, out.stdout + out.stderr
        return out.stderr.strip()

    assert "is not in origin" in sweep("s", "-S", "seed=0,1") and "git push origin HEAD" in sweep("s", "-S", "seed=0,1")
    sh("git", "push", "-q", "origin", "HEAD")
    err = sweep("s", "-S", "training.epochs=1,0")
    assert err.startswith("error: sweep: cell s-2 (training.epochs=0): ") and "training.epochs = 0" in err, err
    assert "letters, digits" in sweep("a/b", "-S", "seed=0")
    err = sweep("s", "-S", "seed=0", "--nodes", "2")
    assert err == "error: sweep: cell s-1 (seed=0): params.yaml: run.nproc_per_node = 1 is not allowed; expected more than 1 with --nodes 2 " \
                  "(one process uses the first node alone)", err
    err = sweep("s", "-S", "run.nproc_per_node=2", "-S", "training.batch_size=250", "--nodes", "2")
    assert "training.batch_size = 250" in err and "multiple of the 4 processes of --nodes 2 x run.nproc_per_node 2" in err, err
    (path / "params.yaml").write_text((path / "params.yaml").read_text() + "\n")
    assert "uncommitted changes (params.yaml)" in sweep("s", "-S", "seed=0")
    assert not (path / ".genlib" / "sweeps").exists()  # nothing planned, nothing submitted
    sh("git", "checkout", "params.yaml")
    out = subprocess.run(["genlib", "sweep", "d", "-S", "seed=0,1", "-S", "eval.reverse_steps=10,20", "--dry-run"],
                         cwd=path, env=env_for(path), capture_output=True, text=True)
    assert out.returncode == 0 and "not submitted (--dry-run" in out.stdout, out.stdout + out.stderr
    plan = json.loads((path / ".genlib" / "sweeps" / "d.json").read_text())
    assert [c["overrides"] for c in plan["cells"]] == [["seed=0", "eval.reverse_steps=10"], ["seed=0", "eval.reverse_steps=20"],
                                                        ["seed=1", "eval.reverse_steps=10"], ["seed=1", "eval.reverse_steps=20"]]
    assert plan["cells"][0]["train_key"] == plan["cells"][1]["train_key"] != plan["cells"][2]["train_key"]  # twins
    assert plan["jobs"] == [] and (path / ".genlib" / "sweeps" / "d" / "sweep.sbatch").is_file()
