"""``genlib compare``: one offline report across DVC experiments.

- :mod:`.experiments` reads ``dvc exp show --json`` into experiments (params, metrics, state);
- :mod:`.files` reads an experiment's output files from git and the DVC cache;
- :mod:`.failures` finds a failed run's one-line error in its queue log;
- :mod:`.groups` groups experiments into configurations and aggregates their seeds;
- :mod:`.directions` says which way each metric is better;
- :mod:`.tables`, :mod:`.figures` and :mod:`.page` draw the report, :mod:`.comparison` assembles it.
"""
from genlib.compare.comparison import compare
from genlib.compare.experiments import CompareError, Experiment, differing_params, parse_exp_show, read_exp_show, read_saved

__all__ = ["CompareError", "Experiment", "compare", "differing_params", "parse_exp_show", "read_exp_show", "read_saved"]
