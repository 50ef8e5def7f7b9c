"""Networks map ``(x, t)`` to an output; registered by name in :data:`genlib.registry.NETS`."""
from genlib.nets import mlp  # noqa: F401  (registers "mlp")
from genlib.nets import unet  # noqa: F401  (registers "unet")
