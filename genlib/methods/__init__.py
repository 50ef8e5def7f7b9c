"""Methods own the math; registered by name in :data:`genlib.registry.METHODS`."""
from genlib.methods import ddpm, dlpm, edm, lim  # noqa: F401  (register "ddpm", "dlpm", "edm", "lim")
from genlib.methods import discr_flow, gan, hvae, scoregan, vae  # noqa: F401  (own_networks.py: "discr_flow", "gan", "hvae", "scoregan", "vae")
from genlib.methods.base import Method, SampleOptions  # noqa: F401
