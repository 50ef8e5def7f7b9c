"""Networks map ``(x, t)`` to an output; registered by name in :data:`genlib.registry.NETS`."""
from genlib.nets import mlp  # noqa: F401  (registers "mlp")
