"""Methods own the math; each is named in :data:`genlib.registry.METHODS` by :mod:`genlib.registry`,
with its spec (``*spec.py``: its section of ``params.yaml`` and its limits, without torch) and the
module of its math, imported on first use."""
