"""Networks map ``(x, t)`` to an output; named in :data:`genlib.registry.NETS` by
:mod:`genlib.registry`, each with its spec (:mod:`genlib.nets.spec`, without torch) and its module,
imported on first use."""
