"""Every module :mod:`genlib.registry` names as a built-in implementation, imported. Each stage imports
this module (:func:`genlib.pipeline.runner.stage_main`), so that its code deps, read from the
imports in the source (:mod:`genlib.pipeline.code`), hold the modules the registries import by
name on first use; ``tests/test_light.py`` checks that the two agree."""
from genlib.data import images, toy2d  # noqa: F401
from genlib.methods import ddpm, discr_flow, dlpm, edm, gan, lim, scoregan, tedm, vae  # noqa: F401
from genlib.methods.hvae import method  # noqa: F401
from genlib.nets import mlp, unet  # noqa: F401
