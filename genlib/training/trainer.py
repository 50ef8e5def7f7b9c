"""One training loop for every method: the method updates its networks, the loop does the rest.

The loop shuffles the data with the run's generator, has the method take each step
(``method.update``: by default the diffusion step, AdamW down ``loss`` with optional gradient
clipping; a VAE or GAN steps its own optimizers), steps the learning-rate schedules, keeps EMAs
of the weights, restores the last good state when the loss turns non-finite (a bounded number of
times), logs curves and saves checkpoints that hold everything needed to resume. Under several
processes each runs this same loop on its share of every batch (:mod:`genlib.training.distributed`).

``state.net`` is the method's network or the ``nn.ModuleDict`` of its networks, and
``state.optimizer`` the :class:`~genlib.training.groups.OptimizerGroup` of the optimizers it
names (``method.optimizers``), so the EMA, the checkpoints, the resume and the NaN restore treat
every method alike. The loss terms a method returns besides ``loss`` and ``grad_norm`` are
logged as curves.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn

from genlib.errors import NonFiniteLoss, TrainingInterrupted
from genlib.methods.base import Method, StepContext
from genlib.progress import Display, tracker
from genlib.sizes import steps_per_epoch
from genlib.training.batches import FromDisk, OnDevice
from genlib.training.callbacks import Callback
from genlib.training.distributed import World
from genlib.training.ema import EMA
from genlib.training.groups import OptimizerGroup, SchedulerGroup


@dataclass
class TrainState:
    """Everything that changes during training; ``state_dict`` is the checkpoint body."""

    net: nn.Module
    ema: EMA
    optimizer: OptimizerGroup
    scheduler: SchedulerGroup
    generator: torch.Generator
    step: int = 0
    origin: int = 0  # the step training started from: 0, or the init checkpoint's (training.init_from)
    perm: torch.Tensor | None = None  # this epoch's data order, for an exact resume
    restores: int = 0
    history: list = field(default_factory=list)  # logged (step, values) rows, replayed on resume
    kept: dict = field(default_factory=dict)  # weights kept besides the last (genlib.training.callbacks.KeepWeights)
    loss_sum: float = 0.0  # loss summed since the last logged row, and over how many steps
    since_log: int = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "net": self.net.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "step": self.step,
            "origin": self.origin,
            "perm": self.perm,
            "restores": self.restores,
            "history": self.history,
            "kept": self.kept,
            "loss_sum": self.loss_sum,
            "since_log": self.since_log,
            "torch_rng": torch.get_rng_state(),  # dropout draws from the global generator
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.step, self.origin, self.perm, self.restores = state["step"], state["origin"], state["perm"], state["restores"]
        self.history = [list(row) for row in state["history"]]
        self.kept = dict(state["kept"])
        self.loss_sum, self.since_log = state["loss_sum"], state["since_log"]
        torch.set_rng_state(state["torch_rng"])


def new_state(net: nn.Module, cfg, total_steps: int, generator: torch.Generator, method: Method) -> TrainState:
    """A fresh state: the optimizers ``method`` names for ``net``, each with its ``optim.schedule``."""
    optimizer = OptimizerGroup(method.optimizers(net, cfg.optim))
    scheduler = SchedulerGroup(optimizer, cfg.optim, total_steps)
    return TrainState(
        net=net,
        ema=EMA(net, cfg.training.ema_rates),
        optimizer=optimizer,
        scheduler=scheduler,
        generator=generator,
    )


def train(
    method: Method,
    state: TrainState,
    data: torch.Tensor | OnDevice | FromDisk,
    cfg,
    logger,
    on_checkpoint: Callable[[TrainState], None] | None = None,
    checkpoint_every: int = 0,
    progress: Display = "off",
    should_stop: Callable[[], bool] | None = None,
    world: World = World(),
    model: nn.Module | None = None,
    transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    callbacks: Sequence[Callback] = (),
    evaluate: Callable[[TrainState], dict[str, float]] | None = None,
) -> TrainState:
    """Run (or continue) training until ``training.epochs`` epochs from ``state.origin`` are done,
    or a callback stops it. Steps count from the start of the first run (a continued run's first
    step is ``origin + 1``); epochs count from ``origin`` (a continued run's first epoch is 1).

    Every ``checkpoint_every`` steps and when ``should_stop()`` turns true, ``on_checkpoint(state)``
    is called at a step boundary; a stop then raises :class:`TrainingInterrupted`. The state holds
    everything the loop carries, so a resumed run computes exactly what an uninterrupted one would.

    The loop waits for the device only at sync steps: logged steps, checkpoints and a stop (under
    several processes, ``world``, a stop waits for the next logged step or checkpoint). There it
    reads the loss and whether any loss since the last sync step was non-finite; if one was, the
    last good state (from the last sync step) is restored and those steps are run again with new
    noise. ``model`` is the network as the forward pass calls it (DDP, compiled); ``state.net``
    is the plain module that states and checkpoints hold. ``transform(batch, generator)`` turns
    stored data into the network's input (images: uint8 to dequantized ``[-1, 1]``), drawing from
    the training generator (the whole batch on every process, like the noise). The ``callbacks``'
    hooks are called as :mod:`genlib.training.callbacks` says. ``data`` is the training set on the
    device, or a :mod:`genlib.training.batches` source that reads it from disk (the same batches). ``evaluate(state)``, the evaluation
    during training (:mod:`genlib.training.evaluation`), runs every ``training.eval_every`` steps
    and at the last one, at a logged step: its metrics join that step's row."""
    tc = cfg.training
    source = OnDevice(data) if isinstance(data, torch.Tensor) else data
    batch = min(tc.batch_size, source.n)
    per_epoch = steps_per_epoch(source.n, batch)
    total = state.origin + tc.epochs * per_epoch
    model = state.net if model is None else model
    shard = world.shard(batch) if world.size > 1 else None
    good = _snapshot(state)
    loss_sum = torch.full((), state.loss_sum, device=source.device, dtype=torch.float64)
    for cb in callbacks:
        cb.on_train_start(state)
    with tracker(total, "train", progress, initial=state.step) as pbar:
        while state.step < total:
            pos = (state.step - state.origin) % per_epoch
            if pos == 0 or state.perm is None:
                state.perm = torch.randperm(source.n, generator=state.generator, device=source.device)
            x0 = source.batch(state.perm, pos, batch)
            if transform is not None:
                x0 = transform(x0, state.generator)
            step = state.step + 1
            log_now = step % cfg.run.log_every == 0 or step == total
            periodic = checkpoint_every > 0 and step % checkpoint_every == 0 and step < total
            stop = should_stop is not None and should_stop()
            sync = log_now or periodic or (stop and world.size == 1)
            context = StepContext(model, shard, sync, tc.grad_clip, source.device, cfg.run.precision, step)
            terms = method.update(state.net, state.optimizer, x0, state.generator, context)
            loss, grad_norm = terms.pop("loss"), terms.pop("grad_norm", None)  # the norm is read at sync steps
            state.scheduler.step()
            state.ema.update(step)
            state.step = step
            loss_sum += loss
            state.since_log += 1
            pbar.update(1)
            if (step - state.origin) % per_epoch == 0:
                for cb in callbacks:
                    cb.on_epoch_end((step - state.origin) // per_epoch, state)
            if not sync:
                continue
            # A non-finite loss since the last sync step left the running sum non-finite.
            n_bad = (~torch.isfinite(loss_sum)).long() + (~torch.isfinite(grad_norm)).long()
            loss_total, bad, stop = world.agree(loss_sum, n_bad, stop)
            if bad:
                _restore(state, good, tc.nan_retries)
                loss_sum.fill_(state.loss_sum)
                pbar.update(state.step - pbar.n)
                continue
            if log_now:
                row = {"loss": loss_total / state.since_log, "grad_norm": float(grad_norm), "lr": state.scheduler.get_last_lr()[0]}
                row.update({name: float(value) for name, value in world.mean(terms).items()})  # this step's batch
                scores = evaluate(state) if evaluate is not None and (state.step % tc.eval_every == 0 or state.step == total) else {}
                row.update(scores)
                state.history.append([state.step, row])
                logger.log(state.step, row)
                for cb in callbacks:
                    cb.on_log(state.step, row, state)
                    if scores:
                        cb.on_eval(state.step, scores, state)
                pbar.set_postfix(loss=f"{row['loss']:.4f}")
                loss_total, state.since_log = 0.0, 0
            state.loss_sum = loss_total
            loss_sum.fill_(loss_total)  # every process holds the agreed sum from here on
            good = _snapshot(state)
            stop = stop and state.step < total
            if on_checkpoint and (periodic or stop):
                on_checkpoint(state)
            if stop:
                raise TrainingInterrupted(f"training stopped at step {state.step} of {total}; a resume checkpoint is saved")
            if log_now and any([cb.should_stop(state) for cb in callbacks]):  # every one is asked
                break
    for cb in callbacks:
        cb.on_train_end(state)
    return state


def _snapshot(state: TrainState) -> dict[str, Any]:
    keep = ("net", "ema", "optimizer", "scheduler", "step", "perm", "loss_sum", "since_log")
    snap = _clone({k: v for k, v in state.state_dict().items() if k in keep})
    snap["history_len"] = len(state.history)  # the history only grows: its length is enough
    return snap


def _clone(tree: Any) -> Any:
    """A copy of nested dicts, lists and tuples whose tensors are cloned (``copy.deepcopy`` costs
    about 20 times more per tensor, which showed at every sync step of a small network)."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().clone()
    if isinstance(tree, dict):
        return {k: _clone(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_clone(v) for v in tree)
    return copy.copy(tree)


def _restore(state: TrainState, good: dict[str, Any], limit: int) -> None:
    """Roll back to the last good state; the generator moves on, so the retry draws new noise."""
    if state.restores >= limit:
        raise NonFiniteLoss(
            f"training: the loss was non-finite in steps {good['step'] + 1} to {state.step} after {state.restores} "
            f"restores (training.nan_retries = {limit}); lower optim.lr, set training.grad_clip, or clamp the noise"
        )
    state.restores += 1
    state.net.load_state_dict(good["net"])
    state.ema.load_state_dict(good["ema"])
    state.optimizer.load_state_dict(_clone(good["optimizer"]))  # it keeps the tensors it is given
    state.scheduler.load_state_dict(good["scheduler"])
    state.step, state.perm = good["step"], good["perm"]
    del state.history[good["history_len"]:]
    state.loss_sum, state.since_log = good["loss_sum"], good["since_log"]
