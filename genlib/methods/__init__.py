"""Methods own the math; registered by name in :data:`genlib.registry.METHODS`."""
from genlib.methods import ddpm, dlpm  # noqa: F401  (register "ddpm", "dlpm")
from genlib.methods.base import Method, SampleOptions  # noqa: F401
