"""Datasets, named in :data:`genlib.registry.DATASETS` by :mod:`genlib.registry`: each with its spec
(``*_spec.py``: its params and checks, without torch) and its module, imported on first use."""
