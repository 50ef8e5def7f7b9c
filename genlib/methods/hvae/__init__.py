"""The hierarchical VAE (``method: hvae``): blocks, their graph, the method, one-file models."""
from genlib.methods.hvae.method import HVAE, HVAEParams  # noqa: F401  (registers "hvae")
from genlib.methods.hvae.serialise import load_model, save_model  # noqa: F401
