"""Resume checkpoints that only the exact training they belong to may use.

A killed or stopped ``train`` leaves ``.genlib/resume/train-<params digest>.pt``. Its identity
holds the digest of the training params, of every source file the train stage runs (genlib and
plugins) and of the training data. A resume file whose identity differs from the run about to
start (the code or the data changed since) is set aside in ``.genlib/resume/stale/`` with one
line saying what changed, and training starts afresh: resuming it would mix two codes' results.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from genlib import io
from genlib.config import Config
from genlib.pipeline.code import SOURCE_ROOT, digest, digests, module_closure
from genlib.pipeline.keys import plugin_digests, train_params
from genlib.pipeline.paths import Paths

STAGE_MODULES = ("genlib.pipeline.train", "genlib.pipeline.runner")  # what `python stages/train.py` runs


def training_key(cfg: Config) -> str:
    """A digest of the training params (names the resume file)."""
    return hashlib.sha256(json.dumps(train_params(cfg), sort_keys=True).encode()).hexdigest()[:16]


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
    code = saved.get("code") or {}
    files = sorted(f for f in set(code) | set(now["code"]) if code.get(f) != now["code"].get(f))
    if files:
        more = f" and {len(files) - 3} more" if len(files) > 3 else ""
        changed.append(f"the code changed ({', '.join(files[:3])}{more})")
    if saved.get("data") != now["data"]:
        changed.append("the training data changed")
    return "; ".join(changed)


def load_resume(file: Path, now: dict) -> dict | None:
    """The state in ``file`` if it belongs to this training, else None (a stale file is moved to
    ``stale/`` beside it, with one line on stderr saying why)."""
    if not file.is_file():
        return None
    body = io.load_torch(file)
    saved = body.get("identity") if isinstance(body, dict) else None
    why = _differences(saved, now)
    if not why and isinstance(body.get("state"), dict):
        return body["state"]
    why = why or "it holds no training state"
    stale = file.parent / "stale" / file.name
    stale.parent.mkdir(parents=True, exist_ok=True)
    file.replace(stale)
    print(f"resume checkpoint {file} set aside in {stale.parent}: {why}; training starts from step 0", file=sys.stderr)
    return None
