"""Data-parallel training (DistributedDataParallel) whose result does not depend on the number
of processes.

The rules, for N processes:

* ``training.batch_size`` is the whole (effective) batch; each process takes ``batch_size / N``
  of it (N must divide it) and ``optim.lr`` is unchanged.
* Every process draws the random numbers of the WHOLE batch from the same generator, seeded as
  in one process: the data order, and the method's ``corrupt`` (times and noise). It keeps its own
  slice (``World.shard``) for the network's forward and backward pass (``Method.shard_loss``).
  Drawing is cheap next to the network.
* The loss of a slice is the method's ``batch_loss``, a mean over the slice; DDP averages the
  gradients of the N slices, which is the gradient of the whole batch's mean. So the weights, the
  EMAs and the checkpoint equal one process's, up to the order of float additions. A method with
  networks of its own (the VAEs, GANs, Discriminator Flow) does the same inside its update, on
  its ``Share`` of the batch, and averages its gradients with an all-reduce of its own
  (:mod:`genlib.methods.own_networks`); its other loss terms are averaged over the processes at
  the logged steps (``World.mean``).
* The processes talk only inside DDP's backward pass and at sync steps (logged steps, resume
  checkpoints): there they add up the loss, the count of non-finite losses (any one makes all
  of them restore the last good state) and the stop requests (SIGINT, SIGTERM).
* Only rank 0 writes: the checkpoint, the curves, the resume files and the metrics.

Dropout is the exception: each process draws its own masks from the global generator, so with
``model.dropout > 0`` N processes train like one only in distribution.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from genlib.device import compiled
from genlib.errors import ConfigError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes; the default is a single process."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: int) -> slice:
        """This process's rows of a batch of ``batch`` rows."""
        if batch % self.size:
            raise ConfigError(
                "training.batch_size", batch,
                f"a multiple of the {self.size} processes (data.nsamples caps the batch; each process takes batch / {self.size})",
            )
        per = batch // self.size
        return slice(self.rank * per, (self.rank + 1) * per)

    def agree(self, loss_sum: torch.Tensor, n_bad: torch.Tensor, stop: bool) -> tuple[float, int, bool]:
        """At a sync step, from every process's own counts: the loss summed over the whole batches
        since the last logged step, the number of non-finite losses, whether any process must stop.

        Each process's ``loss_sum`` starts from the same agreed value and adds its slices' means,
        so the mean over the processes is the sum of the whole batches' means."""
        flags = torch.stack([n_bad, torch.full_like(n_bad, int(stop))])
        if self.size > 1:
            loss_sum = loss_sum.clone()
            dist.all_reduce(loss_sum)
            dist.all_reduce(flags)
        n_bad_all, stops = flags.tolist()
        return float(loss_sum) / self.size, n_bad_all, stops > 0

    def mean(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A logged step's loss terms (each a mean over this process's rows), averaged over the
        processes: the whole batch's means. Every process calls it at the same steps."""
        if self.size == 1 or not terms:
            return terms
        values = torch.stack([v.detach().to(torch.float64) for v in terms.values()])
        dist.all_reduce(values)
        return dict(zip(terms, values / self.size))


def launched() -> bool:
    """Whether torchrun (or another launcher that sets the same variables) started this process."""
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def backend(choice: str, device: torch.device) -> str:
    """``run.backend`` for ``device``: ``auto`` is nccl on CUDA and gloo otherwise."""
    if device.type == "mps":
        raise ConfigError("run.device", "mps", "cpu or cuda with several processes (no backend carries MPS tensors)")
    name = ("nccl" if device.type == "cuda" else "gloo") if choice == "auto" else choice
    if name == "nccl" and (device.type != "cuda" or not dist.is_nccl_available()):
        raise ConfigError("run.backend", choice, f"auto or gloo on {device} (nccl needs CUDA)")
    if name == "gloo" and not dist.is_gloo_available():
        raise ConfigError("run.backend", choice, "auto or nccl (this torch build has no gloo)")
    return name


def check_processes(run, device: torch.device) -> None:
    """Before starting ``run.nproc_per_node`` processes on this machine."""
    if not dist.is_available():
        raise ConfigError("run.nproc_per_node", run.nproc_per_node, "1 (this torch build has no torch.distributed)")
    backend(run.backend, device)
    if device.type == "cuda" and device.index is not None:
        raise ConfigError("run.device", str(device), "auto or cuda with several processes (process i takes cuda:i)")
    if device.type == "cuda" and run.nproc_per_node > torch.cuda.device_count():
        raise ConfigError(
            "run.nproc_per_node", run.nproc_per_node, f"at most {torch.cuda.device_count()} (one process per CUDA device)"
        )


@contextlib.contextmanager
def joined(run, device: torch.device) -> Iterator[tuple[World, torch.device]]:
    """Join the process group torchrun set up (or stay alone); yields the world and this process's
    device (``cuda:LOCAL_RANK`` on CUDA)."""
    if not launched():
        yield World(), device
        return
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group(backend(run.backend, device))
    try:
        yield world, device
    finally:
        dist.destroy_process_group()


def gather_batches(mine: dict[int, torch.Tensor], world: World) -> dict[int, torch.Tensor]:
    """Every process's ``{batch index: CPU tensor}`` merged on rank 0 (the other ranks get ``{}``);
    through the process group, so it works across machines too."""
    if world.size == 1:
        return mine
    everyone = [None] * world.size if world.is_main else None
    dist.gather_object(mine, everyone, dst=0)
    return {i: t for part in everyone for i, t in part.items()} if world.is_main else {}


def wrap(net: nn.Module, world: World, device: torch.device, compile: bool, ddp: bool = True) -> nn.Module:
    """The network as the training forward pass calls it: in DDP under several processes (unless
    ``ddp`` is false: a method with networks of its own averages its gradients itself,
    :mod:`genlib.methods.own_networks`), then compiled if asked. The state keeps ``net`` itself,
    so checkpoints have its plain keys."""
    model = net
    if world.size > 1 and ddp:
        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    return compiled(model, compile)

