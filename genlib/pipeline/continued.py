"""Continuing a run (``training.init_from``): a training state that starts where another run's ended.

A continued run starts from the checkpoint's weights, EMAs, optimizer moments, step and
generators (the one the data order and the noise draw from, and torch's global one, which
dropout draws from), and trains ``training.epochs`` more epochs; its steps go on from the
checkpoint's. Its settings are its own params: the optimizer's (``optim.lr``, betas, weight decay)
replace the saved ones, and the learning-rate schedule is laid over the whole length, the
checkpoint's step plus this run's steps, and taken up at the checkpoint's step. So when the schedule
does not depend on the length (``optim.schedule`` ``none`` or ``step``) and the params are the
first run's, the continued run computes what one uninterrupted run of the total length computes,
bit for bit (tests/test_e2e_continue.py). Its curves, kept weights and NaN restores are its own
steps'.

A checkpoint ``genlib migrate`` wrote (:mod:`genlib.migrate`, marked by its ``migrated_from``)
holds weights alone: no optimizer state, generators or step of a training. Training from it is
fine-tuning: the weights (and each EMA of ``training.ema_rates``, started from them) are the
checkpoint's; the optimizers, their schedule, the step counter (from 0) and the generators start
afresh from this run's params, as in a run from scratch. Any other checkpoint must hold the whole
training state, so a damaged one of the train stage is still refused.
"""
from __future__ import annotations

import torch

from genlib import io
from genlib.config import Config, init_checkpoint
from genlib.errors import ConfigError
from genlib.training.groups import SchedulerGroup
from genlib.training.trainer import TrainState
from genlib.weights import digest_problem, misfit

KEY = "training.init_from"
STATE = ("net", "ema", "optimizer", "generator", "step", "torch_rng")  # what a continued run starts from
MIGRATED = ("net", "step")  # what a migrated checkpoint holds (genlib.migrate), step 0


def _refuse(cfg: Config, allowed: str) -> ConfigError:
    return ConfigError(KEY, cfg.training.init_from, allowed)


def load_init(cfg: Config, data_shape: tuple[int, ...]) -> dict:
    """The body of the checkpoint ``training.init_from`` names, checked as far as it can be
    without the network: a whole training state, of ``cfg``'s method, on data of ``data_shape``."""
    body = io.load_torch(init_checkpoint(cfg.training.init_from), "checkpoint", remake="")
    state = body.get("state") if isinstance(body, dict) else None
    needs = MIGRATED if migrated(body) else STATE
    if not isinstance(state, dict) or any(k not in state for k in needs) or not isinstance(body.get("config"), dict):
        raise _refuse(cfg, "a checkpoint.pt of genlib's train stage, which holds the whole training state, or one genlib migrate "
                           "wrote (kept weights hold no optimizer state)")
    method = body["config"].get("method")
    if method != cfg.method:
        raise _refuse(cfg, f"a checkpoint of method {cfg.method} (it is one of {method})")
    if body.get("data_shape") != list(data_shape):
        raise _refuse(cfg, f"a checkpoint of data shape {list(data_shape)} (it is one of {body.get('data_shape')})")
    if type(state["step"]) is not int or state["step"] < 0 or (migrated(body) and state["step"]):
        held = "a non-negative integer, 0 in a migrated one" if migrated(body) else "a non-negative integer"
        raise _refuse(cfg, f"a checkpoint whose step is {held} (it holds {state['step']!r})")
    problem = digest_problem(body)
    if problem:
        raise _refuse(cfg, f"a checkpoint as genlib wrote it ({problem})")
    return body


def migrated(body: dict) -> bool:
    """Whether ``body`` is a checkpoint ``genlib migrate`` wrote: weights alone, to fine-tune."""
    return isinstance(body.get("migrated_from"), dict)


def start_from(state: TrainState, body: dict, cfg: Config, total: int) -> None:
    """Load the training state of ``body`` (from :func:`load_init`) into the fresh ``state`` of
    this run, whose last step is ``total``: weights, EMAs, optimizer moments under this run's
    optimizer settings, the schedule at the saved step, the step and the generators. Of a migrated
    checkpoint only the weights, which every EMA starts from; the rest stays ``state``'s, fresh."""
    saved = body["state"]
    problem = misfit(state.net, saved["net"])
    if problem:
        raise _refuse(cfg, f"a checkpoint of the network this run builds ({problem})")
    if migrated(body):
        state.net.load_state_dict(saved["net"])
        state.ema.load_state_dict({str(rate): saved["net"] for rate in state.ema.models})
        return
    ema = saved["ema"] if isinstance(saved["ema"], dict) else {}
    for rate, model in state.ema.models.items():
        problem = "not there" if str(rate) not in ema else misfit(model, ema[str(rate)])
        if problem:
            raise _refuse(cfg, f"a checkpoint with an EMA of each of training.ema_rates (that of rate {rate}: {problem})")
    optimizers = saved["optimizer"] if isinstance(saved["optimizer"], dict) else {}
    if set(optimizers) != set(state.optimizer):
        raise _refuse(cfg, f"a checkpoint of the optimizers {', '.join(state.optimizer)} (it holds {', '.join(map(str, optimizers)) or 'none'})")
    # This run's settings of each parameter group (lr is the schedule's, set below).
    settings = {name: [{k: v for k, v in g.items() if k not in ("params", "lr")} for g in opt.param_groups]
                for name, opt in state.optimizer.items()}
    try:
        state.net.load_state_dict(saved["net"])
        state.ema.load_state_dict(ema)
        state.optimizer.load_state_dict(optimizers)
        state.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:  # optimizer groups, generator of another device
        lines = str(err).strip().splitlines()
        raise _refuse(cfg, f"a checkpoint whose training state loads into this run's ({type(err).__name__}: {lines[0] if lines else ''})") from None
    for name, opt in state.optimizer.items():
        for group, own in zip(opt.param_groups, settings[name]):
            group.update(own)
    state.step = state.origin = saved["step"]
    state.scheduler = SchedulerGroup(state.optimizer, cfg.optim, total, start=state.step)
