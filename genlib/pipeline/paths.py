"""Where each stage reads and writes, relative to the project root (as in ``dvc.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    """The pipeline's files under ``root``; ``Paths(".")`` and ``Paths(Path("."))`` are the same."""

    root: Path = Path(".")
    # "model": the run's own model; "teacher": the model its method learns from (train_teacher),
    # whose curves and train metrics then live inside its folder.
    model_dir: str = "model"

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def for_teacher(self) -> "Paths":
        """The same project with ``model`` (and its curves and train metrics) at ``data/teacher``."""
        return Paths(self.root, "teacher")

    @property
    def teacher(self) -> Path:
        return self.root / "data" / "teacher"

    @property
    def keys(self) -> Path:
        """Each stage's resolved params and plugin digests (:mod:`genlib.pipeline.keys`)."""
        return self.root / "data" / "keys"

    @property
    def prepared(self) -> Path:
        return self.root / "data" / "prepared"

    @property
    def classifier(self) -> Path:
        """The evaluation classifier prepare_data trains on a labelled image set."""
        return self.prepared / "classifier.pt"

    @property
    def model(self) -> Path:
        return self.root / "data" / self.model_dir

    @property
    def checkpoint(self) -> Path:
        return self.model / "checkpoint.pt"

    @property
    def train_log(self) -> Path:
        return self.root / "plots" / "train" if self.model_dir == "model" else self.model / "curves"

    @property
    def train_metrics(self) -> Path:
        return self.root / "metrics" / "train.json" if self.model_dir == "model" else self.model / "train.json"

    @property
    def resume(self) -> Path:
        return self.root / ".genlib" / "resume"

    @property
    def samples(self) -> Path:
        return self.root / "data" / "samples"

    @property
    def samples_plot(self) -> Path:
        return self.root / "plots" / "samples.png"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics" / "eval.json"

    @property
    def analysis(self) -> Path:
        return self.root / "plots" / "analysis"

    @property
    def analysis_index(self) -> Path:
        """The method's analysis figures with their captions, for the report."""
        return self.analysis / "index.json"

    @property
    def report(self) -> Path:
        return self.root / "plots" / "report"
