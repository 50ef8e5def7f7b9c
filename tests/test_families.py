"""The interface the methods with networks of their own share with the diffusion methods: one
trainer for all."""
import dataclasses

import pytest
import torch

from genlib.config import build_method
from genlib.pipeline.trained import build_net
from genlib.config import load
from genlib.errors import ConfigError
from genlib.methods.vae import VAE
from genlib.training.logger import NullLogger
from genlib.training.trainer import NonFiniteLoss, new_state, train

from family_helpers import ROOT, blob, fresh_state, tiny_cfg, trained


class FlakyVAE(VAE):
    """Feeds NaN data on the update calls listed in ``bad``: the weights themselves turn NaN."""

    bad: set = set()

    def __init__(self, params):
        super().__init__(params)
        self.calls = 0

    def update(self, nets, optimizers, x0, generator, grad_clip):
        self.calls += 1
        if self.calls in self.bad:
            x0 = x0 * float("nan")
        return super().update(nets, optimizers, x0, generator, grad_clip)


def flaky_run(bad, retries=3):
    cfg = tiny_cfg("vae", 2)
    cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, nan_retries=retries))
    x = blob()
    _, state = fresh_state(cfg, x)
    method = FlakyVAE(cfg.method_params)
    method.bad = set(bad)
    return train(method, state, x, cfg, NullLogger())


def test_nan_restores_every_network_and_optimizer():
    state = flaky_run({3, 9})
    assert state.restores == 2 and state.step == 16
    assert all(torch.isfinite(p).all() for p in state.net.parameters())
    assert all(torch.isfinite(m["exp_avg"]).all() for m in state.optimizer["vae"].state.values())


def test_persistent_nan_stops():
    with pytest.raises(NonFiniteLoss):
        flaky_run(set(range(3, 1000)), retries=1)


def test_diffusion_keeps_its_one_network_and_optimizer():
    cfg = load(ROOT / "params.yaml")
    assert build_net(cfg, (2,)).__class__.__name__ == "MLP"
    state = new_state(build_net(cfg, (2,)), cfg, 10, torch.Generator(), build_method(cfg))
    assert list(state.optimizer) == ["net"] and isinstance(state.optimizer["net"], torch.optim.AdamW)


def test_family_state_names_its_networks_and_optimizers():
    _, state = trained(tiny_cfg("gan", 1), blob())
    body = state.state_dict()
    assert set(body["optimizer"]) == set(body["scheduler"]) == {"generator", "discriminator"}
    assert {k.split(".")[0] for k in body["net"]} == {"generator", "discriminator"}
    assert set(body["ema"]) == {"0.9", "0.99"}


@pytest.mark.parametrize("method", ["vae", "gan"])
def test_families_take_image_data_and_a_points_only_family_refuses_it(tmp_path, method):
    # No file is read at load time, so an empty root is enough.
    images = {"method": method, "data.dataset": "mnist", "data.root": str(tmp_path), "model.net": "unet"}
    cfg = load(ROOT / "params.yaml", images)
    assert cfg.data_kind == "images"

    class PointsOnly(VAE):
        data_kinds = ("points",)

    with pytest.raises(ConfigError) as info:
        PointsOnly(cfg.methods["vae"]).check_config(cfg)
    assert info.value.key == "data.dataset" and "2D point set" in str(info.value)
