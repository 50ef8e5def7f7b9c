"""How many compute threads a stage uses (``run.threads``), and the register of running pipelines.

PyTorch on the CPU starts one intra-op thread per core, whatever else runs on the machine. Two
stages at once on two cores (``dvc queue start -j 2``) then run four busy-waiting OpenMP threads
on two cores: a DLPM training ran at 0.6 steps/s against 35.7 with one thread each.

``run.threads: auto`` takes the processors this process may use (its CPU affinity, capped by
``SLURM_CPUS_PER_TASK`` when it is set) and divides them among the genlib pipelines running now
on those processors, this one included; nor does it take more than were idle over a quarter of
a second at the start (other work: a test suite, another user's job; Linux only), nor more than
``OMP_NUM_THREADS`` when that is set; at least one. Too many threads cost far more than too
few: two pipelines of two threads each on two cores trained 6.8 times slower than with one
thread each, one thread alone on two cores 1.4 times slower than two (``bench/RESULTS.md``,
"Threads"). An integer sets the count as given. Either way the count is set once, at the
stage's start: the inter-op pool can be sized only once per process, and a count that changed
during a run would make its last bits depend on when other work started (the thread count
changes the rounding of parallel sums; README, ``run``).

The register: each running genlib stage holds a file in ``<temp dir>/genlib-<uid>/running/``
named by the pid of its pipeline, holding that process's start time, its CPUs and its SLURM job.
Under DVC the pipeline is the ``dvc`` process that runs the stage (the first ancestor that is not
a shell), so a pipeline counts between its stages too; a stage started by hand is its own
pipeline. Counting keeps the files whose process is alive (a reused pid is told apart by its
start time), whose CPUs overlap this process's and whose SLURM job is this one's (separate jobs
on one node have their own processors), and removes the files of dead processes. A file per
process needs no lock and no server, and a killed stage leaves nothing that outlives it: its
file is ignored and removed once its pid is gone.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator

import torch

SHELLS = {"sh", "bash", "dash", "zsh", "fish", "ksh"}  # DVC runs a stage's cmd through $SHELL -c


def register_dir() -> Path:
    """The per-user folder of running pipelines under the system's temp dir."""
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"genlib-{user}" / "running"


def _stat(pid: int) -> tuple[str, int, str] | None:
    """``(command name, parent pid, start time)`` from Linux's ``/proc/<pid>/stat``; None elsewhere."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()  # from the state on: ppid is the 2nd, starttime the 20th
    return name, int(fields[1]), fields[19]


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    stat = _stat(pid)
    return started is None or stat is None or stat[2] == started


def pipeline_pid() -> int:
    """The process whose lifetime is this pipeline's: under DVC (``DVC_STAGE`` set) the first
    ancestor that is not a shell, the ``dvc`` process; otherwise this process."""
    if "DVC_STAGE" not in os.environ:
        return os.getpid()
    pid = os.getppid()
    while (stat := _stat(pid)) is not None and stat[0] in SHELLS and stat[1] > 1:
        pid = stat[1]
    return pid


def cpus() -> set[int]:
    """The processors this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def _entry(pid: int) -> dict:
    stat = _stat(pid)
    return {"started": stat[2] if stat else None, "cpus": sorted(cpus()), "job": os.environ.get("SLURM_JOB_ID")}


@contextlib.contextmanager
def registered(folder: Path | None = None) -> Iterator[None]:
    """Hold this pipeline's file in the register while the block runs. A stage started by hand
    removes it at the end; a DVC pipeline's file stays for its next stages, until ``dvc`` exits."""
    folder = register_dir() if folder is None else folder
    pid = pipeline_pid()
    file = folder / str(pid)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = folder / f".{os.getpid()}.tmp"
        tmp.write_text(json.dumps(_entry(pid)))
        tmp.replace(file)
    except OSError:  # a read-only temp dir: this stage counts itself only
        file = None
    try:
        yield
    finally:
        if file is not None and pid == os.getpid():
            file.unlink(missing_ok=True)


def running(folder: Path | None = None) -> int:
    """The pipelines in the register that share processors with this process and its SLURM job,
    at least 1 (this one); the files of dead processes are removed."""
    folder = register_dir() if folder is None else folder
    mine, job, count = cpus(), os.environ.get("SLURM_JOB_ID"), 0
    for file in folder.glob("[0-9]*"):
        try:
            entry = json.loads(file.read_text())
        except (OSError, ValueError):
            continue  # being replaced, or half written
        if not _alive(int(file.name), entry.get("started")):
            file.unlink(missing_ok=True)
        elif entry.get("job") == job and mine & set(entry.get("cpus", ())):
            count += 1
    return max(count, 1)


def idle_processors(mine: set[int], seconds: float = 0.25) -> float | None:
    """How many of the processors ``mine`` were idle over the next ``seconds``, from Linux's
    ``/proc/stat`` (idle and I/O wait time over all time, steal included: a hypervisor that
    gives a virtual processor to another machine makes it busy); None where there is none."""

    def ticks() -> dict[int, tuple[int, int]]:
        out = {}
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if name[:3] == "cpu" and name[3:].isdigit() and int(name[3:]) in mine:
                v = [int(x) for x in values[:8]]  # user nice system idle iowait irq softirq steal
                out[int(name[3:])] = (v[3] + v[4], sum(v))
        return out

    try:
        before = ticks()
        time.sleep(seconds)
        after = ticks()
    except (OSError, ValueError, IndexError):
        return None
    if not before:
        return None
    return sum((after[c][0] - i) / (after[c][1] - t) if after[c][1] > t else 1.0 for c, (i, t) in before.items())


def _env_int(name: str) -> int | None:
    """A positive integer environment variable (``OMP_NUM_THREADS=4,2`` counts as 4), or None."""
    head = os.environ.get(name, "").split(",")[0].strip()
    return int(head) if head.isdigit() and int(head) > 0 else None


def resolve(setting: int | str, folder: Path | None = None) -> tuple[int, str]:
    """The thread count for ``run.threads = setting`` and why, in words."""
    if setting != "auto":
        return int(setting), "run.threads"
    processors, source = len(cpus()), ""
    slurm = _env_int("SLURM_CPUS_PER_TASK")
    if slurm is not None and slurm < processors:
        processors, source = slurm, " (SLURM_CPUS_PER_TASK)"
    stages = running(folder)
    n = max(processors // stages, 1)
    reason = f"{processors} processor{'s' * (processors != 1)}{source}"
    idle = idle_processors(cpus())
    if idle is not None:
        n = max(min(n, round(idle)), 1)
        reason += f", {idle:.1f} idle"
    reason += f", {stages} genlib pipeline{'s' * (stages != 1)} running"
    omp = _env_int("OMP_NUM_THREADS")
    if omp is not None and omp < n:
        n = omp
        reason += f", OMP_NUM_THREADS={omp}"
    return n, reason


@contextlib.contextmanager
def threads_set(n: int) -> Iterator[None]:
    """Use ``n`` intra-op and inter-op threads while the block runs. The inter-op pool can be sized
    once per process, before any parallel work: a stage's process sets it at its start; a second
    stage run in the same process (a test) keeps the first one's. The intra-op count is put back."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    if torch.get_num_interop_threads() != n:
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
