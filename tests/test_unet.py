"""The U-Net: shapes, zero start, learning, gradients everywhere, per-image independence, checks."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genlib.errors import ConfigError
from genlib.nets.unet import UNet, UNetParams
from genlib.params import build
from genlib.registry import NETS


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These nets are tiny: one thread runs them faster than two, and a busy machine cannot stall it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(**fields) -> UNetParams:
    return UNetParams(**{"channels": 16, "groups": 8, "num_res_blocks": 1, "num_heads": 2, **fields})


def randomise(net: nn.Module, seed: int = 0) -> None:
    """Give the zero-initialised layers random weights, so every path carries signal."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in net.parameters():
            if not param.any():
                param.copy_(0.1 * torch.randn(param.shape, generator=g))


@pytest.mark.parametrize(
    "shape, mult",
    [
        ((1, 28, 28), (1, 2, 2)),
        ((3, 28, 28), (1, 2, 2)),
        ((1, 32, 32), (1, 2, 2, 2)),
        ((3, 32, 32), (1, 2, 2)),
        ((3, 16, 16), (1, 2)),
        ((1, 64, 64), (1, 1, 2, 2)),
    ],
)
def test_output_has_the_input_shape_and_starts_at_zero(shape, mult):
    torch.manual_seed(0)
    net = UNet(shape, tiny(channel_mult=mult))
    x, t = torch.randn(2, *shape), torch.rand(2)
    out = net(x, t)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert torch.equal(out, torch.zeros_like(out))  # zero-initialised output convolution
    randomise(net)
    assert net(x, t).abs().sum() > 0


def test_registered_and_default_attention_sits_after_the_first_downsampling():
    assert NETS.get("unet") is UNet
    net = UNet((1, 28, 28), tiny())
    attended = [m for m in net.modules() if type(m).__name__ == "AttentionBlock"]
    # one per block at 14x14 (1 down + 2 up with num_res_blocks=1), plus the middle one
    assert len(attended) == 4


def test_a_few_steps_fit_a_fixed_batch():
    torch.manual_seed(0)
    net = UNet((1, 8, 8), tiny(channel_mult=(1, 2)))
    x = torch.randn(8, 1, 8, 8)
    t = torch.rand(8)
    target = -x + t[:, None, None, None]
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(20):
        loss = (net(x, t) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


@pytest.mark.parametrize("scale_shift", [True, False])
def test_every_parameter_gets_a_gradient_and_time_matters(scale_shift):
    torch.manual_seed(0)
    net = UNet((3, 16, 16), tiny(channel_mult=(1, 2), scale_shift=scale_shift, dropout=0.1))
    randomise(net)
    x = torch.randn(4, 3, 16, 16)
    t = torch.rand(4)
    net(x, t).pow(2).mean().backward()
    dead = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert dead == []
    net.eval()
    with torch.no_grad():
        early, late = net(x, torch.full((4,), 0.1)), net(x, torch.full((4,), 0.9))
    assert (early - late).abs().mean() > 1e-3


def test_images_do_not_mix_within_a_batch():
    torch.manual_seed(0)
    net = UNet((3, 16, 16), tiny(channel_mult=(1, 2), attention_resolutions=(16, 8))).eval()
    randomise(net)
    x, t = torch.randn(5, 3, 16, 16), torch.rand(5)
    with torch.no_grad():
        together = net(x, t)
        alone = torch.cat([net(x[i : i + 1], t[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "shape, fields, key, words",
    [
        ((2,), {}, "model.net", "use mlp for 2D data"),
        ((1, 28, 28), {"channel_mult": (1, 2, 2, 2)}, "model.channel_mult", "28x28"),
        ((3, 30, 30), {"channel_mult": (1, 2, 2)}, "model.channel_mult", "divisible by 4"),
        ((1, 32, 32), {"attention_resolutions": (14,)}, "model.attention_resolutions", "32, 16, 8"),
        ((1, 28, 28), {"channels": 24, "groups": 16}, "model.groups", "24"),
        ((1, 28, 28), {"num_heads": 3}, "model.num_heads", r"width \(32\)"),
    ],
)
def test_shapes_and_widths_that_do_not_fit_are_config_errors(shape, fields, key, words):
    with pytest.raises(ConfigError, match=words) as info:
        UNet(shape, tiny(**fields))
    assert info.value.key == key and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "fields, key",
    [
        ({"channel_mult": []}, "model.channel_mult"),
        ({"channel_mult": [1, 0]}, "model.channel_mult"),
        ({"attention_resolutions": [16, -1]}, "model.attention_resolutions"),
        ({"dropout": 1.0}, "model.dropout"),
        ({"channels": 0}, "model.channels"),
        ({"num_heads": 0}, "model.num_heads"),
        ({"width": 3}, "model.width"),
    ],
)
def test_bad_params_name_the_key(fields, key):
    with pytest.raises(ConfigError) as info:
        build(UNetParams, fields, "model.")
    assert info.value.key == key


def saved_for_backward(net: nn.Module, shape: tuple[int, ...], batch: int) -> int:
    """Bytes per image of the tensors autograd keeps for the backward pass of ``net`` (each
    storage once, the weights left out): what a training step holds on top of the model."""
    weights = {p.untyped_storage().data_ptr() for p in net.parameters()}
    kept: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            kept[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(torch.randn(batch, *shape), torch.rand(batch))
    return sum(kept.values()) // batch


@pytest.mark.parametrize("shape,fields", [
    ((1, 28, 28), {"channels": 32, "channel_mult": (1, 2, 2), "attention_resolutions": (7,), "groups": 32, "num_heads": 4}),  # configs/mnist.yaml
    ((1, 28, 28), {"channels": 64, "channel_mult": (1, 2, 2), "num_res_blocks": 2, "groups": 32, "num_heads": 4}),  # the defaults, attention at 14
    ((3, 32, 32), {"channels": 32, "channel_mult": (1, 2, 2, 2), "num_res_blocks": 2}),
    ((1, 16, 16), {"channel_mult": (1, 2)}),  # the tiny test runs'
    ((3, 32, 64), {"channel_mult": (1, 2), "attention_resolutions": (16,), "scale_shift": False}),
], ids=["mnist", "defaults", "cifar", "tiny", "wide"])
def test_the_activation_estimate_is_an_upper_bound_of_what_autograd_keeps(shape, fields):
    """genlib.sizes.unet_activations, which the stages check against the device's memory before
    they load anything: at least what autograd keeps, and at most 1.25x it (measured 1.09x to
    1.10x; on a GPU a fused attention kernel keeps less than the weights it counts). The sampling
    estimate lies between the skip connections, all alive at the bottom, and the training one."""
    from genlib.sizes import unet_activations

    p = tiny(**fields)
    net = UNet(shape, p)
    training, sampling = unet_activations(shape, p)
    kept = saved_for_backward(net, shape, batch=2)
    assert kept <= training <= 1.25 * kept, (kept, training, training / kept)
    skips = []
    for block in [net.inp, *net.down]:
        block.register_forward_hook(lambda module, args, out: skips.append(out[0].numel() * 4))
    with torch.no_grad():
        net(torch.randn(1, *shape), torch.rand(1))
    assert sum(skips) < sampling < training
