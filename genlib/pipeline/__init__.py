"""The stage layer, the top of genlib: one module per DVC stage, the paths they share, the stage
runner, the torchrun worker and the points/images I/O. ``stages/*.py`` call into it; nothing
below it imports it.

The modules stay apart on purpose: a stage's DVC code dependencies are the modules it imports,
so this package's ``__init__`` imports nothing and each stage module imports only what it runs.
"""
