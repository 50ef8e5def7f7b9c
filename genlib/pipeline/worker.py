"""Several processes on one machine: the train or generate stage starts itself again under torchrun.

``launch`` runs ``python -m torch.distributed.run --standalone --nproc_per_node N -m
genlib.pipeline.STAGE ROOT CONFIG`` (CONFIG: the resolved params as JSON) and waits. torchrun
starts N workers, each the stage's own module run as a script, which calls :func:`serve` with
its stage function: the workers run no code the stage does not import.

Signals: torchrun gets a process group of its own, so a Ctrl-C or a kill of the stage reaches
the stage alone, which passes it on once; torchrun passes it to the workers, which stop together
at their next sync step after rank 0 saved a resume checkpoint. The stop is then one line, the
stage's: torchrun runs through :func:`torchrun`, which leaves out its warnings and its traceback
of the signal, and the workers print nothing of it. torchrun starts each worker in a
session of its own, which a SIGKILL of the stage's group does not reach: a worker therefore
exits at once when the stage is gone, as a killed single process would.

Threads: the stage, which only waits, hands each worker an equal share of its own thread count
(``run.threads``, :mod:`genlib.pipeline.threads`), at least one.

Several nodes: inside a SLURM job whose script sets ``GENLIB_SPAN_NODES=1`` (``genlib sweep``'s
does), torchrun spans the job's nodes instead (:func:`torchrun_command`): ``srun`` starts one
torchrun per node, which meet at a c10d rendezvous on the job's first node, where the batch
script, and so the stage, runs. Every node works in the same folder (a shared filesystem), so the
workers read the same ``data/prepared`` and rank 0, wherever it runs, writes where the stage reads.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import torch

from genlib import io, sizes
from genlib.device import check_precision, denormals_flushed, free_memory, resolve_device
from genlib.errors import TrainingInterrupted, WorkersFailed
from genlib.pipeline.prepared import read_meta
from genlib.registry import METHODS
from genlib.training import distributed

LAUNCHER = "GENLIB_LAUNCHER_PID"  # the stage's pid, for the workers on its machine to watch
LAUNCHER_HOST = "GENLIB_LAUNCHER_HOST"  # that machine
SPAN = "GENLIB_SPAN_NODES"  # "1": torchrun spans the nodes of the SLURM job this runs in
THREADS = "GENLIB_WORKER_THREADS"  # each worker's share of the stage's threads


# The stages that can run as several processes: what each is called, and what a stop leaves behind.
ACTIVITY = {"train": "training", "generate": "generation"}
LEFT = {"train": "a resume checkpoint is saved", "generate": "no samples were written"}


def launch(cfg, root: Path, stage: str = "train", model_dir: str = "model") -> None:
    """Run ``stage`` with ``run.nproc_per_node`` processes on this machine (on each node of the
    SLURM job, see :func:`torchrun_command`); returns when they are done. ``model_dir`` is the
    model's folder in ``data/`` (``teacher`` for the teacher's training)."""
    cmd = [*torchrun_command(cfg.run.nproc_per_node),
           "-m", f"genlib.pipeline.{stage}", str(root.resolve()), json.dumps(cfg.to_dict()), model_dir]
    if cmd[0] == "srun":
        endpoint = next(a for a in cmd if a.startswith("--rdzv_endpoint=")).split("=", 1)[1]
        print(f"{ACTIVITY[stage]} on {os.environ['SLURM_JOB_NUM_NODES']} node(s) x {cfg.run.nproc_per_node} processes: "
              f"srun starts torchrun on each, rendezvous at {endpoint}", file=sys.stderr, flush=True)
    # The workers share the stage's threads (run.threads), which waits; OMP_NUM_THREADS keeps
    # torchrun from setting its own default of 1.
    share = str(max(torch.get_num_threads() // cfg.run.nproc_per_node, 1))
    env = {**os.environ, LAUNCHER: str(os.getpid()), LAUNCHER_HOST: socket.gethostname(), THREADS: share,
           "OMP_NUM_THREADS": share}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    received: list[int] = []

    def forward(signum, frame) -> None:
        received.append(signum)
        # srun answers a first SIGINT with its tasks' states only; SIGTERM it passes on
        proc.send_signal(signal.SIGTERM if cmd[0] == "srun" else signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code and received:
        raise TrainingInterrupted(f"{ACTIVITY[stage]} stopped by {signal.Signals(received[0]).name}; {LEFT[stage]}")
    if code:
        raise WorkersFailed(f"{ACTIVITY[stage]}: torchrun exited with code {code}; the workers' errors are printed above")


def spans_nodes() -> bool:
    """Whether torchrun spans the nodes of the SLURM job this runs in (see the module's doc)."""
    return os.environ.get(SPAN) == "1" and "SLURM_JOB_ID" in os.environ


def torchrun_command(nproc: int) -> list[str]:
    """The command that starts torchrun with ``nproc`` workers per node: on this machine alone,
    or, when :func:`spans_nodes`, one torchrun per node of the SLURM job started by ``srun``
    (with the CPUs each task of the job has), meeting at a c10d rendezvous on the job's first
    node on a port free here (this is that node: SLURM runs the batch script there)."""
    here = [sys.executable, "-m", "genlib.pipeline.worker", f"--nproc_per_node={nproc}"]
    if not spans_nodes():
        return [*here, "--standalone"]
    nodes = os.environ["SLURM_JOB_NUM_NODES"]
    cpus = [f"--cpus-per-task={os.environ['SLURM_CPUS_PER_TASK']}"] if "SLURM_CPUS_PER_TASK" in os.environ else []
    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    return ["srun", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1", *cpus,
            *here, f"--nnodes={nodes}", "--rdzv_backend=c10d", f"--rdzv_endpoint={first_node()}:{port}",
            f"--rdzv_id=genlib-{os.environ['SLURM_JOB_ID']}"]


def first_node() -> str:
    """The first host of the SLURM job's nodes (``scontrol show hostnames $SLURM_JOB_NODELIST``)."""
    nodelist = os.environ.get("SLURM_JOB_NODELIST", "")
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True)
    except FileNotFoundError:
        raise WorkersFailed("scontrol not found: torchrun spans the SLURM job's nodes only where SLURM's commands are") from None
    hosts = out.stdout.split()
    if out.returncode != 0 or not hosts:
        raise WorkersFailed(f"scontrol show hostnames {nodelist!r}: {(out.stderr.strip() or 'no host').splitlines()[-1]}")
    return hosts[0]


def torchrun(args: list[str]) -> None:
    """torchrun (``torch.distributed.run``) on ``args``, quiet about a stop: its warnings (a
    signal received, the workers sent it) are left out, and the signal exits with 128 + its
    number, with nothing more on stderr, instead of a traceback. Its errors, a worker's failure
    among them, are printed."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.run import main

    from genlib.pipeline.runner import silence_stderr

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.ERROR)
    try:
        main(args)
    except SignalException as err:
        silence_stderr()  # and its exit's: the stage says the stop
        raise SystemExit(128 + int(err.sigval)) from None


def _exit_without(pid: int) -> None:
    """Exit (without writing anything) as soon as process ``pid`` is gone; checked twice a second."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(pid, 0)  # signal 0: only asks whether the process exists
            except ProcessLookupError:
                os._exit(137)

    threading.Thread(target=watch, daemon=True).start()


def _silent_interrupt(signum, frame) -> None:
    """A worker whose stop the stage says: stderr goes nowhere before the interrupt is raised, so
    that not even an "Exception ignored in ..." of a finaliser it lands in reaches the terminal."""
    from genlib.pipeline.runner import silence_stderr

    silence_stderr()
    raise KeyboardInterrupt


def serve(step: Callable) -> None:
    """A worker: run ``step`` on the config and project root the stage passed on."""
    from genlib.config import from_dict
    from genlib.pipeline.paths import Paths
    from genlib.pipeline.runner import run_stage
    from genlib.pipeline.threads import threads_set

    root, config, model_dir = sys.argv[1:4]
    launched = LAUNCHER in os.environ
    if launched and os.environ.get(LAUNCHER_HOST) == socket.gethostname():  # not on the job's other nodes
        _exit_without(int(os.environ[LAUNCHER]))
    # Every process meets the same known errors; rank 0 alone prints them, and a stop is said by
    # the stage that launched the workers (when one did), once.
    quiet = os.environ["RANK"] != "0"
    if quiet or launched:
        signal.signal(signal.SIGINT, _silent_interrupt)
    with threads_set(int(os.environ.get(THREADS, torch.get_num_threads()))):
        run_stage(lambda: step(from_dict(json.loads(config)), Paths(Path(root), model_dir)), quiet=quiet, quiet_stop=quiet or launched)


def check_batch_memory(stage: str, cfg, paths, device: torch.device) -> None:
    """Before anything is loaded: the U-Net's activations for a batch of ``stage`` (a training
    or a sampling batch, :func:`genlib.sizes.check_activations`) within the free memory of
    ``device``, for the prepared images' shape (``meta.json``). Each GPU holds its process's
    share of a training batch; the processes on the CPU share its memory."""
    if METHODS.spec(cfg.method).own_networks:  # a VAE or GAN: no U-Net of model:
        return
    shape = tuple(read_meta(paths.prepared)["shape"])
    sizes.check_activations(cfg, shape, stage == "train", *free_memory(device), per_process=device.type == "cuda")


def on_processes(stage: str, cfg, paths, body: Callable, written: Path):
    """Run ``body(cfg, paths, world, device)`` as this process, or, with ``run.nproc_per_node > 1``
    and not yet under torchrun, start the stage again on that many processes and return what it
    wrote to ``written``. The device, its precision and the batches' memory are checked first;
    denormal floats are flushed while it runs (see genlib.device)."""
    device = resolve_device(cfg.run.device)
    check_precision(cfg.run.precision, device)
    check_batch_memory(stage, cfg, paths, device)
    if cfg.run.nproc_per_node > 1 and not distributed.launched():
        distributed.check_processes(cfg.run, device)
        launch(cfg, paths.root, stage, paths.model_dir)
        return io.read_json(written)
    with distributed.joined(cfg.run, device) as (world, device), denormals_flushed(device):
        return body(cfg, paths, world, device)


if __name__ == "__main__":  # how launch starts torchrun
    torchrun(sys.argv[1:])
