"""run.device, run.precision and run.compile: checked at the door, and the network is what changes."""
import dataclasses
import functools

import pytest
import torch

from genlib import device
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage
from genlib.config import load
from genlib.errors import ConfigError
from genlib.io import load_torch
from genlib.methods.base import SampleOptions
from genlib.methods.ddpm import DDPM, DDPMParams
from genlib.nets.mlp import MLP

from test_config import ROOT
from test_pipeline import TINY
from test_trainer import data, run, tiny_cfg


def test_device_choice():
    assert device.resolve_device("cpu") == torch.device("cpu")
    assert device.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu")
    with pytest.raises(ConfigError, match=r"^params: run.device = 'cuda:99' .*expected one of auto, cpu.* on this machine$"):
        device.resolve_device("cuda:99")


def test_bf16_needs_a_device_that_has_it(monkeypatch):
    device.check_precision("bf16", torch.device("cpu"))  # the CPU has bf16 autocast
    monkeypatch.setattr(device, "bf16_supported", lambda d: False)
    with pytest.raises(ConfigError, match=r"run.precision = 'bf16' .*'fp32' on cpu"):
        device.check_precision("bf16", torch.device("cpu"))
    device.check_precision("fp32", torch.device("cpu"))


def test_bf16_training_changes_the_forward_pass_only():
    # bf16 rounds the network's matmuls (8 bits of mantissa): the weights move off the fp32 ones
    # but training stays finite and close, and the random stream is the same.
    cfg = tiny_cfg(epochs=1)
    fp32 = run(DDPM(DDPMParams(50)), cfg, data())
    bf16 = run(DDPM(DDPMParams(50)), dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, precision="bf16")), data())
    assert torch.equal(fp32.generator.get_state(), bf16.generator.get_state())
    for p, q in zip(fp32.net.parameters(), bf16.net.parameters()):
        assert torch.isfinite(q).all() and torch.allclose(p, q, atol=0.05)
    assert any(not torch.equal(p, q) for p, q in zip(fp32.net.parameters(), bf16.net.parameters()))


def test_bf16_sampling_keeps_the_sampler_in_fp32():
    torch.manual_seed(0)
    net, method = MLP((2,)).eval(), DDPM(DDPMParams(20))
    exact = method.sample(net, (256, 2), 20, torch.Generator().manual_seed(1), SampleOptions())
    with device.autocast(torch.device("cpu"), "bf16"):
        rounded = method.sample(net, (256, 2), 20, torch.Generator().manual_seed(1), SampleOptions())
    assert rounded.dtype == torch.float32 and not torch.equal(exact, rounded)
    # bf16 keeps 8 bits of mantissa (0.4% per rounding); an untrained net's samples are large
    assert (exact - rounded).norm() < 0.02 * exact.norm()


def test_compiled_training_saves_the_plain_module(tmp_path, monkeypatch):
    # The eager backend traces with dynamo like the default one (same _orig_mod. wrapper) but
    # skips inductor's C++ build, which takes minutes on this machine.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    weights = {}
    for flag in (False, True):
        cfg = load(ROOT / "params.yaml", {**TINY, "run.compile": flag, "training.epochs": 1})
        paths = Paths(tmp_path / str(flag))
        prepare_data(cfg, paths)
        train_stage(cfg, paths)
        weights[flag] = load_torch(paths.checkpoint)["state"]
    assert list(weights[True]["net"]) == list(weights[False]["net"])  # no _orig_mod. prefix
    assert not any(k.startswith("_orig_mod.") for k in weights[True]["ema"]["0.99"])
    for name, tensor in weights[False]["net"].items():
        assert torch.allclose(tensor, weights[True]["net"][name], atol=1e-6), name


def test_denormals_are_flushed_inside_the_stages_only():
    # Heavy-tailed inputs push SiLU's exponentials below 1.2e-38, where x86 arithmetic slows down
    # several times; the stages flush such values to zero on the CPU, and put the mode back after.
    from genlib.device import denormals_flushed, flushing_denormals

    assert not flushing_denormals()
    tiny = torch.tensor([1e-39], dtype=torch.float32)
    with denormals_flushed(torch.device("cpu")):
        assert flushing_denormals() and float(tiny * 2) == 0.0
    assert not flushing_denormals() and float(tiny * 2) > 0
