"""Resume checkpoints that only the exact training they belong to may use.

A killed or stopped ``train`` leaves ``.genlib/resume/train-<params digest>.pt``. Its identity
holds the digest of the training params, of every source file the train stage runs (genlib and
plugins) and of the training data. A resume file whose identity differs from the run about to
start (the code or the data changed since) is set aside in ``.genlib/resume/stale/`` with one
line saying what changed, and training starts afresh: resuming it would mix two codes' results.
So is a resume file that is corrupt, crafted (a pickle that asks for code: it is refused unread)
or does not fit the network and the state this training builds: a resume file never blocks a run.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

from genlib import io
from genlib.config import Config
from genlib.errors import DataError
from genlib.pipeline.code import SOURCE_ROOT, digest, digests, module_closure
from genlib.pipeline.keys import plugin_digests, train_stage_params
from genlib.pipeline.paths import Paths
from genlib.weights import digest_problem, misfit

STAGE_MODULES = ("genlib.pipeline.train", "genlib.pipeline.runner")  # what `python stages/train.py` runs


def training_key(cfg: Config) -> str:
    """A digest of the train stage's params (names the resume file): the training params, and
    what the curves the state's history replays depend on (the evaluation during training)."""
    return hashlib.sha256(json.dumps(train_stage_params(cfg), sort_keys=True).encode()).hexdigest()[:16]


def identity(cfg: Config, paths: Paths) -> dict:
    """What a resume checkpoint must match: the training params, the code and the data."""
    files = set().union(*(module_closure(m) for m in STAGE_MODULES))
    return {
        "params": training_key(cfg),
        "code": {**digests(files, SOURCE_ROOT), **plugin_digests(cfg, paths.root)},
        "data": digest(paths.prepared / "train.npy"),
    }


def _differences(saved, now: dict) -> str:
    if not isinstance(saved, dict):
        return "it was written by an older genlib, without an identity"
    changed = []
    if saved.get("params") != now["params"]:
        changed.append("the training params changed")
    code = saved.get("code") if isinstance(saved.get("code"), dict) else {}
    files = sorted(f for f in set(code) | set(now["code"]) if code.get(f) != now["code"].get(f))
    if files:
        more = f" and {len(files) - 3} more" if len(files) > 3 else ""
        changed.append(f"the code changed ({', '.join(files[:3])}{more})")
    if saved.get("data") != now["data"]:
        changed.append("the training data changed")
    return "; ".join(changed)


# The plain values of a training state (step, counters, running sums, the logged history) and
# what a resume file may hold in their place.
_PLAIN = {int: (int,), float: (int, float), list: (list,)}


def _misfit(state, saved: dict) -> str:
    """What in a resume file's training state does not fit the fresh ``state`` of this training:
    a part it lacks or holds as another type, or weights (raw or an EMA) of other names or
    shapes, or non-finite ones."""
    fresh = state.state_dict()
    missing = [k for k in fresh if k not in saved]
    if missing:
        return f"its training state lacks {', '.join(missing)}"
    odd = [k for k, v in fresh.items() if type(v) in _PLAIN
           and (isinstance(saved[k], bool) or not isinstance(saved[k], _PLAIN[type(v)]))]
    if odd:
        return f"its {', '.join(f'{k} ({type(saved[k]).__name__})' for k in odd)} not of the type training keeps"
    problem = misfit(state.net, saved["net"])
    if problem:
        return f"its weights ('net') do not fit the network: {problem}"
    ema = saved["ema"] if isinstance(saved["ema"], dict) else {}
    for rate, model in state.ema.models.items():
        if str(rate) not in ema:
            return f"it holds no EMA of rate {rate}"
        problem = misfit(model, ema[str(rate)])
        if problem:
            return f"its EMA of rate {rate} does not fit the network: {problem}"
    return ""


def set_aside(file: Path, why: str, main: bool = True) -> None:
    """Move ``file`` to ``stale/`` beside it, with one line on stderr saying why. Only the main
    process moves it; the others reach the same decision from the same file, or find it gone."""
    if not main:
        return
    stale = file.parent / "stale" / file.name
    stale.parent.mkdir(parents=True, exist_ok=True)
    file.replace(stale)
    print(f"resume checkpoint {file} set aside in {stale.parent}: {why}; training starts from step 0", file=sys.stderr)


def load_resume(file: Path, now: dict, main: bool = True) -> dict | None:
    """The body of ``file`` (its training state and identity) if it belongs to this training,
    else None: a stale, corrupt or crafted file is set aside (:func:`set_aside`), never resumed
    and never in the way."""
    if not file.is_file():
        return None
    try:
        body = io.load_torch(file, "file", remake="")
    except DataError as err:
        set_aside(file, str(err).removeprefix(f"{file}: "), main)
        return None
    saved = body.get("identity") if isinstance(body, dict) else None
    why = _differences(saved, now)
    if not why and isinstance(body.get("state"), dict):
        return body
    set_aside(file, why or "it holds no training state", main)
    return None


def restore(file: Path, now: dict, fresh: Callable[[], Any], main: bool = True) -> tuple[Any, bool]:
    """A training state built by ``fresh()`` and whether resume file ``file`` was loaded into it:
    it is when the file belongs to this training (``now``, its :func:`identity`) and fits the
    state; otherwise it is set aside. A state that fails to load halfway is built anew."""
    state = fresh()
    body = load_resume(file, now, main)
    if body is None:
        return state, False
    why = _misfit(state, body["state"])
    if not why:
        try:
            state.load_state_dict(body["state"])
            why = digest_problem(body)  # bytes changed in a tensor load without a word
            if not why:
                return state, True
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:  # optimizer, generator, RNG
            lines = str(err).strip().splitlines()
            why = f"its training state does not load ({type(err).__name__}: {lines[0] if lines else ''})"
        state = fresh()
    set_aside(file, why, main)
    return state, False
