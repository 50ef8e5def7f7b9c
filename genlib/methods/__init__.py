"""Methods own the math; registered by name in :data:`genlib.registry.METHODS`."""
from genlib.methods import ddpm, dlpm, edm, lim, tedm  # noqa: F401  (register "ddpm", "dlpm", "edm", "lim", "tedm")
from genlib.methods import gan, hvae, vae  # noqa: F401  (register "gan", "hvae", "vae": own_networks.py)
from genlib.methods.base import Method, SampleOptions  # noqa: F401
