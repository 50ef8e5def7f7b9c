"""Datasets, registered by name in :data:`genlib.registry.DATASETS`."""
from genlib.data import images  # noqa: F401  (registers the image datasets)
from genlib.data import toy2d  # noqa: F401  (registers the 2D datasets)
