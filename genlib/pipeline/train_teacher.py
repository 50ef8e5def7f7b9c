"""The ``train_teacher`` stage: train the model the run's method learns from into ``data/teacher``
(ScoreGAN's data score model: ``scoregan.teacher``), before ``train``, which depends on it.

Its key is the teacher's training params, so a teacher trained once is reused by every run that
names the same one. For a method without a teacher the folder holds one small file with the
same bytes whatever the method, so the stage never makes ``train`` rerun.
"""
from __future__ import annotations

import shutil
import sys

from genlib import io
from genlib.config import Config, teacher_config
from genlib.pipeline.paths import Paths
from genlib.pipeline.train import train_stage

NONE = {"teacher": None, "why": "the method learns from no other model"}


def train_teacher_stage(cfg: Config, paths: Paths = Paths()) -> dict:
    """Train the teacher (or continue its interrupted training); returns its train metrics."""
    teacher = teacher_config(cfg)
    marker = paths.teacher / "none.json"
    if teacher is None:
        shutil.rmtree(paths.teacher, ignore_errors=True)
        io.write_json(marker, NONE)
        print("train_teacher: no teacher (the method learns from no other model)", file=sys.stderr)
        return {}
    marker.unlink(missing_ok=True)
    print(f"train_teacher: training {teacher.method}, the teacher of {cfg.method}, into {paths.teacher}", file=sys.stderr)
    return train_stage(teacher, paths.for_teacher())
