"""Registries: every name a user types in ``params.yaml`` is a key in one of these.

A user's own method, network, dataset, logger sink, training callback or loss-weight schedule registers itself the same way from their own module,
named in ``params.yaml`` under ``plugins:`` and imported before the config is checked. The
built-in ones are declared at the end of this module by the paths of their parts, imported on
first use: ``genlib list`` and ``genlib check`` import no torch.
"""
from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterable, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that no registry entry answers to."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence
        return str(self.args[0])


class Registry(Generic[T]):
    """Names to entries. Each entry has a spec, what checking a config needs (its params class,
    its limits), and an implementation, what running it needs. A user's entry registers one class
    for both (:meth:`register`). A built-in one is declared by the paths of its spec, in a module
    that does not import torch, and of its implementation (below), each imported on first use: so
    listing names and checking params stay light."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._specs: dict[str, object | str] = {}
        self._impls: dict[str, T | str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._impls and self._impls[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._specs[name], self._impls[name] = obj, obj
            return obj

        return add

    def declare(self, name: str, spec: str, impl: str) -> None:
        """A built-in entry by the ``"module:attribute"`` paths of its spec and implementation."""
        self._specs[name], self._impls[name] = spec, impl

    def get(self, name: str) -> T:
        """The implementation (imported on first use for a built-in entry)."""
        return _resolve(self._impls, self._known(name))

    def spec(self, name: str):
        """What checking a config needs of the entry; never imports its implementation."""
        return _resolve(self._specs, self._known(name))

    def _known(self, name: str) -> str:
        if name not in self._impls:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._impls))}"
            )
        return name

    def names(self) -> list[str]:
        return sorted(self._impls)

    def __contains__(self, name: object) -> bool:
        return name in self._impls


def _resolve(entries: dict, name: str):
    """``entries[name]``, imported (and kept) where it is still a ``"module:attribute"`` path."""
    entry = entries[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = entries[name] = getattr(importlib.import_module(module), attr)
    return entry


METHODS: Registry = Registry("method")
DATASETS: Registry = Registry("dataset")
NETS: Registry = Registry("network")
LOGGERS: Registry = Registry("logger")  # sinks of the training curves (run.loggers; genlib.training.logger)
CALLBACKS: Registry = Registry("callback")  # hooks into the training loop (training.callbacks; genlib.training.callbacks)
HVAE_BLOCKS: Registry = Registry("hvae block type")  # a plugin's block types (hvae.blocks[i].type; genlib.methods.hvae.custom)
HVAE_NETS: Registry = Registry("hvae block network")  # the networks inside hvae blocks (hvae.blocks[i].net)
SCHEDULES: Registry = Registry("loss-weight schedule")  # per-step schedules of a loss weight (hvae.kl_schedule; genlib.schedules)

# The built-in entries: name, spec, implementation (in genlib.<first part>). Every implementation
# inherits its spec; genlib.implementations imports each implementation's module, for the stages'
# code deps (tests/test_light.py checks both).
_BUILTIN = {
    METHODS: [
        ("ddpm", "methods.diffusion_spec:DDPMSpec", "methods.ddpm:DDPM"),
        ("dlpm", "methods.diffusion_spec:DLPMSpec", "methods.dlpm:DLPM"),
        ("lim", "methods.diffusion_spec:LIMSpec", "methods.lim:LIM"),
        ("edm", "methods.diffusion_spec:EDMSpec", "methods.edm:EDM"),
        ("tedm", "methods.diffusion_spec:TEDMSpec", "methods.tedm:TEDM"),
        ("gan", "methods.own_spec:GANSpec", "methods.gan:GAN"),
        ("vae", "methods.own_spec:VAESpec", "methods.vae:VAE"),
        ("hvae", "methods.hvae.spec:HVAESpec", "methods.hvae.method:HVAE"),
        ("discr_flow", "methods.own_spec:DiscrFlowSpec", "methods.discr_flow:DiscrFlow"),
        ("scoregan", "methods.own_spec:ScoreGANSpec", "methods.scoregan:ScoreGAN"),
    ],
    DATASETS: [
        ("mnist", "data.images_spec:ImageSpec", "data.images:Mnist"),
        ("fashion_mnist", "data.images_spec:ImageSpec", "data.images:FashionMnist"),
        ("cifar10", "data.images_spec:ImageSpec", "data.images:Cifar10"),
        ("cifar10_lt", "data.images_spec:ImageSpec", "data.images:Cifar10LT"),
        ("image_folder", "data.images_spec:ImageFolderSpec", "data.images:ImageFolderDataset"),
        ("celeba", "data.images_spec:ImageFolderSpec", "data.images:CelebA"),
        ("lsun", "data.images_spec:ImageFolderSpec", "data.images:Lsun"),
        ("ffhq", "data.images_spec:ImageFolderSpec", "data.images:Ffhq"),
        ("imagenet", "data.images_spec:ImageFolderSpec", "data.images:ImageNet"),
        ("gmm_2", "data.toy2d_spec:Gmm2Spec", "data.toy2d:Gmm2"),
        ("gmm_grid", "data.toy2d_spec:GridSpec", "data.toy2d:GmmGrid"),
        ("sas_grid", "data.toy2d_spec:SasGridSpec", "data.toy2d:SasGrid"),
        ("sas", "data.toy2d_spec:SasSpec", "data.toy2d:SasNoise"),
        ("skewed_levy", "data.toy2d_spec:SkewedLevySpec", "data.toy2d:SkewedLevy"),
        ("swiss_roll", "data.toy2d_spec:ToySpec", "data.toy2d:SwissRoll"),
        ("rose", "data.toy2d_spec:ToySpec", "data.toy2d:Rose"),
        ("fractal_tree", "data.toy2d_spec:ToySpec", "data.toy2d:FractalTree"),
        ("olympic_rings", "data.toy2d_spec:ToySpec", "data.toy2d:OlympicRings"),
        ("checkerboard", "data.toy2d_spec:ToySpec", "data.toy2d:Checkerboard"),
    ],
    NETS: [
        ("mlp", "nets.spec:MLPSpec", "nets.mlp:MLP"),
        ("unet", "nets.spec:UNetSpec", "nets.unet:UNet"),
    ],
    HVAE_NETS: [  # (in, out, width, depth) -> module; its spec is the function itself
        ("dense", "nets.dense:dense", "nets.dense:dense"),
        ("conv", "methods.hvae.blocks:conv", "methods.hvae.blocks:conv"),
        ("conv1x1", "methods.hvae.blocks:conv1x1", "methods.hvae.blocks:conv1x1"),
    ],
    SCHEDULES: [(name, f"schedules:{name}", f"schedules:{name}") for name in ("linear", "cosine", "cyclical")],  # Ramp -> fraction
    # A sink is checked by its name alone: its spec is its class, which imports its writer on use.
    # The train stage imports genlib.training.logger itself, so it is in that stage's code deps.
    LOGGERS: [
        ("dvclive", "training.logger:CurveLogger", "training.logger:CurveLogger"),
        ("tensorboard", "training.logger:TensorBoardLogger", "training.logger:TensorBoardLogger"),
    ],
}
for _registry, _entries in _BUILTIN.items():
    for _name, _spec, _impl in _entries:
        _registry.declare(_name, f"genlib.{_spec}", f"genlib.{_impl}")


def load_plugins(modules: Iterable[str]) -> None:
    """Import the user's modules by the names written in params; they register on import."""
    for name in modules:
        try:
            importlib.import_module(name)
        except (ImportError, ValueError, TypeError) as err:  # ValueError: '', TypeError: '.x' (relative)
            from genlib.errors import ConfigError

            raise ConfigError("plugins", name, f"an importable module name ({err})") from None
