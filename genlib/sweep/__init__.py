"""``genlib sweep``: a grid of experiments as one SLURM job array, one shared DVC cache.

The grid is ``dvc exp run --queue``'s (:mod:`genlib.sweep.grid`). ``genlib sweep`` checks every
cell's params, writes the plan (:mod:`genlib.sweep.plan`) and submits one array
(:mod:`genlib.sweep.slurm`); each array task clones the project at the submitted commit into its
own folder and runs its cell (:mod:`genlib.sweep.task`); ``genlib sweep --status`` reads the
scheduler, the tasks' records and the origin repository (:mod:`genlib.sweep.status`).

This is the top layer, beside the CLI: no stage imports it, so it keys no stage.
"""


class SweepError(RuntimeError):
    """A sweep that cannot be planned, submitted or read: one line saying what to do."""
