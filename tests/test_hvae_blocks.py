"""The hierarchical VAE's further block types (simple, dual, top_simple, gen_prior), per-block
choices (dist, net, concat_posterior, transform), the output likelihoods, the KL warm-up, a
plugin's block type and its one-file model, and the door checks of all of these."""
import math

import pytest
import torch

from genlib.config import build_method, load
from genlib.errors import ConfigError, DataError
from genlib.methods.base import StepContext
from genlib.methods.hvae import HVAE, HVAEParams, load_model, save_model
from genlib.methods.hvae import blocks as B
from genlib.methods.hvae.custom import CustomBlock
from genlib.methods.hvae.graph import TRANSFORMS, parse_graph
from genlib.methods.likelihoods import DiscretizedLogistic
from genlib.pipeline.keys import train_params
from genlib.registry import HVAE_BLOCKS, SCHEDULES

from family_helpers import ROOT, Recorder, blob, tiny_cfg, trained

EVERY = [  # points: every new type and per-block choice in one graph
    {"name": "x", "type": "input", "width": 16, "transform": "standardize"},
    {"name": "h", "type": "encoder", "input": "x", "width": 16, "net": "dense"},
    {"name": "d", "type": "dual", "input": "x", "input2": "h", "width": 16, "merge": "sum"},
    {"name": "top", "type": "top", "input": "d", "latent": 2, "width": 16, "dist": "laplace"},
    {"name": "s", "type": "simple", "input": "top", "width": 16},
    {"name": "g", "type": "gen_prior", "input": "s", "latent": 2, "width": 16},
    {"name": "r", "type": "residual", "input": "g", "skip": "h", "latent": 2, "width": 16, "concat_posterior": False},
    {"name": "out", "type": "output", "input": "r", "width": 16},
]
PRIOR_TOP = [  # a top layer without a posterior (top_simple) above an inferred gen layer
    {"name": "x", "type": "input", "width": 16},
    {"name": "top", "type": "top_simple", "latent": 2, "width": 16},
    {"name": "g", "type": "gen", "input": "top", "latent": 2, "width": 16},
    {"name": "out", "type": "output", "input": "g", "width": 16},
]


def test_every_new_block_type_trains_and_the_prior_only_layer_has_no_kl():
    rec = Recorder()
    method, state = trained(tiny_cfg("hvae", 4, {"hvae.blocks": EVERY}), blob(), rec)
    graph, nets = method.graph, state.net
    assert [b.name for b in graph.top_down] == ["top", "s", "g", "r"] and [b.name for b in graph.latents] == ["top", "g", "r"]
    assert type(nets["top"].posterior(None, torch.zeros(1, 16))).__name__ == "Laplace"
    assert nets["g"].q is None and nets["r"].q[0].in_features == 16  # the sum of state and feature
    x, g = blob(64, seed=1), torch.Generator().manual_seed(0)
    layers, px = method.top_down(nets, 64, g, method.bottom_up(nets, x))
    assert layers[1].q is None and [tuple(layer.z.shape) for layer in layers] == [(64, 2)] * 3
    recon, kl = method.terms(nets, x, g)
    assert kl.shape == (64, 3) and torch.equal(kl[:, 1], torch.zeros(64)) and (kl[:, [0, 2]] > 0).all()
    assert torch.isfinite(method.iwae_log_likelihood(nets, x, 4, g)).all()
    losses = [v["loss"] for _, v in rec.rows]
    assert losses[-1] < losses[0]


def test_top_simple_draws_the_top_from_its_trainable_prior():
    method = HVAE(HVAEParams(blocks=tuple(PRIOR_TOP)))
    nets = method.networks((2,))
    assert nets["top"].q is None and method.graph.latents[1].skip == "x"
    x, g = blob(8), torch.Generator().manual_seed(0)
    layers, _ = method.top_down(nets, 8, g, method.bottom_up(nets, x))
    assert layers[0].q is None and layers[1].q is not None
    assert method.terms(nets, x, g)[1][:, 0].abs().max() == 0


def test_laplace_kl_and_moments_match_monte_carlo():
    q = B.Laplace(torch.tensor([[0.5, -1.0]]), torch.tensor([[-0.7, 0.3]]))
    p = B.Laplace(torch.tensor([[0.2, 0.4]]), torch.tensor([[0.5, -0.2]]))
    n = 200_000
    expand = lambda d: B.Laplace(d.mu.expand(n, 2), d.logvar.expand(n, 2))  # noqa: E731
    z = expand(q).sample(torch.Generator().manual_seed(0))
    var = q.logvar.exp()[0]
    assert torch.allclose(z.mean(0), q.mu[0], atol=5 * math.sqrt(float(var.max()) / n))  # 5 standard errors
    assert torch.allclose(z.var(0), var, rtol=5 * math.sqrt(5 / n))  # Laplace: the sample variance's sd is sqrt(5/n) var
    mc = (expand(q).log_prob(z) - expand(p).log_prob(z)).mean()
    assert abs(float(mc - q.kl(p).sum())) < 5 * 3.0 / math.sqrt(n)


def test_discretized_logistic_output_gives_exact_bits_per_dim():
    blocks = [
        {"name": "x", "type": "input", "width": 8},
        {"name": "h1", "type": "encoder", "input": "x", "width": 8, "scale": 8},  # 1x1
        {"name": "top", "type": "top", "input": "h1", "latent": 4, "width": 8},
        {"name": "s", "type": "simple", "input": "top", "width": 8, "scale": 8, "net": "conv1x1"},
        {"name": "out", "type": "output", "input": "s", "width": 8},
    ]
    method = HVAE(HVAEParams(blocks=tuple(blocks), likelihood="discretized_logistic"))
    nets = method.networks((1, 8, 8))
    assert nets["s"].bias.shape == (8, 8, 8) and nets["out"].net[-1].out_channels == 2
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 1, 8, 8), generator=g, dtype=torch.uint8)
    eval_params = load(ROOT / "params.yaml").eval
    m = method.extra_metrics(nets, x, g, type(eval_params)(**{**eval_params.__dict__, "n_importance": 4}))
    assert m["bits_per_dim"] == pytest.approx(m["nll_iwae"] / (64 * math.log(2)))  # a mass on the levels: no +7
    _, px = method.top_down(nets, 6, g)
    assert isinstance(px.lik, DiscretizedLogistic) and px.sample(g).unique().numel() <= 256


def test_kl_warm_up_rises_to_beta_and_keys_train():
    method = HVAE(HVAEParams(kl_warmup_steps=10, kl_warmup_start=0.2, beta=2.0))
    assert [method.kl_weight(s) for s in (0, 5, 10, 50)] == pytest.approx([0.4, 1.2, 2.0, 2.0])
    assert HVAE(HVAEParams()).kl_weight(1) == 1.0
    nets = method.networks((2,))
    opt = method.optimizers(nets, load(ROOT / "params.yaml").optim)
    terms = method.update(nets, opt, blob(16), torch.Generator().manual_seed(0), StepContext(nets, step=5))
    assert float(terms["kl_weight"]) == pytest.approx(1.2)
    cfg = load(ROOT / "params.yaml", {"method": "hvae", "hvae.kl_warmup_steps": 300})
    assert train_params(cfg)["hvae"]["kl_warmup_steps"] == 300


@pytest.mark.parametrize("schedule, steps, start, extra, at, want", [
    ("cosine", 10, 0.2, {}, (0, 2, 5, 10), (0.4, 2 * (0.2 + 0.8 * (1 - math.cos(0.2 * math.pi)) / 2), 1.2, 2.0)),
    ("cyclical", 100, 0.0, {}, (0, 5, 15, 25, 30, 99, 100), (0.0, 0.8, 2.0, 0.0, 0.8, 2.0, 2.0)),  # M = 4, R = 0.5
    ("cyclical", 60, 0.5, {"kl_cycles": 2, "kl_ratio": 0.25}, (0, 3, 6, 8, 30, 33, 59), (1.0, 1.4, 1.8, 2.0, 1.0, 1.4, 2.0)),
])
def test_kl_schedules_give_their_weights_at_chosen_steps(schedule, steps, start, extra, at, want):
    p = HVAEParams(kl_schedule=schedule, kl_warmup_steps=steps, kl_warmup_start=start, beta=2.0, **extra)
    assert [HVAE(p).kl_weight(s) for s in at] == pytest.approx(want, abs=1e-12)


def test_the_default_linear_schedule_is_the_warm_up_it_was_bit_for_bit():
    cfg = load(ROOT / "configs" / "mnist.yaml", {"method": "hvae"})
    p, method = cfg.method_params, build_method(cfg)
    assert p.kl_schedule == "linear" and p.kl_warmup_steps == 200
    before = [p.beta * (p.kl_warmup_start + (1 - p.kl_warmup_start) * s / p.kl_warmup_steps) for s in range(200)]
    assert [method.kl_weight(s) for s in range(200)] == before  # the formula the linear warm-up had
    assert HVAE(load(ROOT / "params.yaml", {"method": "hvae"}).method_params).kl_weight(1) == 1.0


def test_a_plugins_schedule_runs_and_keys_train(monkeypatch):
    halfway = lambda r: r.start if r.step < r.steps // 2 else 1.0  # noqa: E731
    monkeypatch.setitem(SCHEDULES._impls, "test_halfway", halfway)
    monkeypatch.setitem(SCHEDULES._specs, "test_halfway", halfway)
    cfg = load(ROOT / "params.yaml", {"method": "hvae", "hvae.kl_schedule": "test_halfway", "hvae.kl_warmup_steps": 10,
                                      "hvae.kl_warmup_start": 0.5})
    assert [build_method(cfg).kl_weight(s) for s in (4, 5)] == [0.5, 1.0]
    assert train_params(cfg)["hvae"]["kl_schedule"] == "test_halfway"
    assert train_params(cfg) != train_params(load(ROOT / "params.yaml", {"method": "hvae", "hvae.kl_warmup_steps": 10,
                                                                         "hvae.kl_warmup_start": 0.5}))


class Gated(CustomBlock):
    """A test plugin's bottom-up block: ``h * sigmoid(f(h))``, its gain from ``config``."""

    role = "bottom_up"

    @classmethod
    def build(cls, spec, ctx):
        return cls(ctx.net(ctx.widths[spec.input], spec.width, spec.width, spec.depth), spec.config["gain"])

    def __init__(self, net, gain):
        super().__init__()
        self.net, self.gain = net, gain

    def forward(self, h):
        return self.gain * h * torch.sigmoid(self.net(h))


CUSTOM = [
    {"name": "x", "type": "input", "width": 16},
    {"name": "gate", "type": "test_gated", "input": "x", "width": 16, "config": {"gain": 2.0}},
    {"name": "top", "type": "top", "input": "gate", "latent": 2, "width": 16},
    {"name": "out", "type": "output", "input": "top", "width": 16},
]


@pytest.fixture
def gated(monkeypatch):
    monkeypatch.setitem(HVAE_BLOCKS._impls, "test_gated", Gated)
    monkeypatch.setitem(HVAE_BLOCKS._specs, "test_gated", Gated)


def test_a_plugins_block_type_round_trips_through_the_model_file(gated, tmp_path, monkeypatch):
    method = HVAE(HVAEParams(blocks=tuple(CUSTOM)))
    nets = method.networks((2,))
    assert isinstance(nets["gate"], Gated) and nets["gate"].gain == 2.0
    save_model(tmp_path / "hvae.pt", nets, method.params, (2,))
    again, nets2, _ = load_model(tmp_path / "hvae.pt")
    draw = lambda m, n: m.sample(n, (5, 2), 1, torch.Generator().manual_seed(3))  # noqa: E731
    assert torch.equal(draw(method, nets), draw(again, nets2))
    monkeypatch.delitem(HVAE_BLOCKS._impls, "test_gated")
    with pytest.raises(DataError) as info:
        load_model(tmp_path / "hvae.pt")
    assert "'test_gated'" in str(info.value) and f"plugin module {__name__!r}" in str(info.value) and "\n" not in str(info.value)


def _with(blocks, i, **changes):
    return [{**b, **changes} if j == i else b for j, b in enumerate(blocks)]


@pytest.mark.parametrize("blocks, key, words", [
    (_with(EVERY, 2, input2="top"), "hvae.blocks[2].input2", "bottom-up"),
    (_with(EVERY, 1, width=8), "hvae.blocks[2].merge", "inputs of one width"),
    (_with(_with(EVERY, 1, width=8), 2, merge="concat"), "hvae.blocks[6].concat_posterior", "skip feature of the state's width 16"),
    (_with(EVERY, 4, latent=2), "hvae.blocks[4].latent", "takes input, width, depth, scale"),
    (_with(EVERY, 5, skip="h"), "hvae.blocks[5].skip", "takes input, latent, width"),
    (_with(EVERY, 3, dist="cauchy"), "hvae.blocks[3].dist", "gaussian"),
    (_with(EVERY, 1, net="unet"), "hvae.blocks[1].net", "conv, conv1x1, dense"),
    (_with(EVERY, 0, transform="log"), "hvae.blocks[0].transform", "identity, silu, standardize"),
    (_with(EVERY, 2, merge="max"), "hvae.blocks[2].merge", "concat"),
    (EVERY + [{"name": "t2", "type": "top_simple", "latent": 2, "width": 8}], "hvae.blocks[8].type", "one top or top_simple (or a plugin's top type) block"),
    (_with(PRIOR_TOP, 1, input="x"), "hvae.blocks[1].input", "takes latent, width"),
    (_with(EVERY, 3, type="gen_prior"), "hvae.blocks", "type top or top_simple"),
    (_with(EVERY, 1, config={"a": 1}), "hvae.blocks[1].config", "takes input, width"),
    (_with(EVERY, 6, condition_transform="log"), "hvae.blocks[6].condition_transform", "identity, silu, standardize"),
    (_with(EVERY, 1, condition_transform="silu"), "hvae.blocks[1].condition_transform", "takes input, width"),  # one input
    (_with(EVERY, 3, condition_transform="silu"), "hvae.blocks[3].condition_transform", "takes input, latent, width"),
    (_with(EVERY, 5, condition_transform="silu"), "hvae.blocks[5].condition_transform", "takes input, latent, width"),
])
def test_graph_errors_name_the_block_key(blocks, key, words):
    with pytest.raises(ConfigError) as info:
        parse_graph(blocks)
    assert info.value.key == key and words in str(info.value) and "\n" not in str(info.value), str(info.value)


CONDITIONED = [  # a condition transform on each kind of block with a second input
    {"name": "x", "type": "input", "width": 8},
    {"name": "h", "type": "encoder", "input": "x", "width": 8},
    {"name": "d", "type": "dual", "input": "x", "input2": "h", "width": 8, "condition_transform": "silu"},
    {"name": "top", "type": "top", "input": "d", "latent": 2, "width": 8},
    {"name": "g", "type": "gen", "input": "top", "skip": "h", "latent": 2, "width": 8, "condition_transform": "standardize"},
    {"name": "r", "type": "residual", "input": "g", "latent": 2, "width": 8},
    {"name": "out", "type": "output", "input": "r", "width": 8},
]


def test_a_condition_transform_changes_what_the_posterior_reads():
    method = HVAE(HVAEParams(blocks=tuple(CONDITIONED)))
    nets, x = method.networks((2,)), blob(16)
    feats = method.bottom_up(nets, x)
    assert torch.equal(feats["d"], nets["d"](feats["x"], torch.nn.functional.silu(feats["h"])))
    assert not torch.allclose(feats["d"], nets["d"](feats["x"], feats["h"]))
    layers, _ = method.top_down(nets, 16, torch.Generator().manual_seed(0), feats, mean=True)
    state = nets["top"].next_state(None, layers[0].z, None)
    want = nets["g"].posterior(state, B.standardize(feats["h"]))  # the condition, standardised
    assert torch.equal(layers[1].q.mu, want.mu) and torch.equal(layers[1].q.logvar, want.logvar)
    assert not torch.allclose(layers[1].q.mu, nets["g"].posterior(state, feats["h"]).mu)
    state = nets["g"].next_state(state, layers[1].z, nets["g"].prior(state, 16)[1])
    assert torch.equal(layers[2].q.mu, nets["r"].posterior(state, feats["x"]).mu)  # none given: as it is


class LearnedTop(CustomBlock):
    """A test plugin's top layer: a trainable mean under unit variance, ``q(z | h)``, ``s = f(z)``."""

    role, top = "latent", True

    @classmethod
    def build(cls, spec, ctx):
        return cls(ctx.net, ctx.widths[spec.input], spec.latent, spec.width)

    def __init__(self, net, feature, latent, width):
        super().__init__()
        self.mu = torch.nn.Parameter(torch.full((latent,), 0.5))
        self.q, self.state = net(feature, 2 * latent, width, 1), net(latent, width, width, 1)

    def prior(self, state, n):
        return B.Gaussian(self.mu.expand(n, -1), torch.zeros(n, self.mu.numel())), None

    def posterior(self, state, h):
        return B.Gaussian.from_params(self.q(h))

    def next_state(self, state, z, extra):
        return self.state(z)


PLUGIN_TOP = [
    {"name": "x", "type": "input", "width": 16},
    {"name": "t", "type": "test_top", "input": "x", "latent": 2, "width": 16},
    {"name": "g", "type": "gen", "input": "t", "latent": 2, "width": 16},
    {"name": "out", "type": "output", "input": "g", "width": 16},
]


@pytest.fixture
def plugin_top(monkeypatch):
    monkeypatch.setitem(HVAE_BLOCKS._impls, "test_top", LearnedTop)
    monkeypatch.setitem(HVAE_BLOCKS._specs, "test_top", LearnedTop)


def test_a_plugins_latent_type_can_be_the_top_block(plugin_top):
    method = HVAE(HVAEParams(blocks=tuple(PLUGIN_TOP), free_bits=0.0))
    nets = method.networks((2,))
    assert [b.name for b in method.graph.latents] == ["t", "g"] and isinstance(nets["t"], LearnedTop)
    x, g = blob(32), torch.Generator().manual_seed(0)
    layers, _ = method.top_down(nets, 32, g, method.bottom_up(nets, x), mean=True)
    assert torch.equal(layers[0].q.mu, nets["t"].posterior(None, method.bottom_up(nets, x)["x"]).mu)
    assert torch.equal(method.top_down(nets, 4, g, mean=True)[0][0].z, torch.full((4, 2), 0.5))  # the prior's mean
    method.loss(nets, x, g).backward()
    assert nets["t"].mu.grad.abs().sum() > 0  # the KL reaches the plugin's prior


@pytest.mark.parametrize("changes, key, words", [
    ({1: {"input": None}}, "hvae.blocks[1].input", "the bottom-up block the posterior of test_top reads"),
    ({1: {"input": "g"}}, "hvae.blocks[1].input", "bottom-up block"),
    ({1: {"skip": "x"}}, "hvae.blocks[1].skip", "takes latent, width, input"),
])
def test_a_plugins_top_type_is_checked_as_a_top_block(plugin_top, changes, key, words):
    blocks = [{**b, **changes.get(i, {})} for i, b in enumerate(PLUGIN_TOP)]
    with pytest.raises(ConfigError) as info:
        parse_graph(blocks)
    assert info.value.key == key and words in str(info.value) and "\n" not in str(info.value), str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_graph(PLUGIN_TOP[:2] + [{"name": "z", "type": "top", "input": "x", "latent": 2, "width": 16}, *PLUGIN_TOP[2:]])
    assert info.value.key == "hvae.blocks[2].type" and "one top or top_simple (or a plugin's top type) block" in str(info.value)


def test_a_condition_transform_on_a_plugins_layer_without_a_posterior_is_refused(monkeypatch):
    prior_only = type("PriorOnly", (CustomBlock,), {"role": "latent", "inferred": False})
    monkeypatch.setitem(HVAE_BLOCKS._impls, "test_prior_only", prior_only)
    monkeypatch.setitem(HVAE_BLOCKS._specs, "test_prior_only", prior_only)
    with pytest.raises(ConfigError) as info:
        parse_graph(_with(CONDITIONED, 5, type="test_prior_only", condition_transform="silu"))
    assert info.value.key == "hvae.blocks[5].condition_transform" and "no posterior" in str(info.value)


DUAL_DOWN = [  # a dual on the top-down side: the state below g joined with the top layer's output
    {"name": "x", "type": "input", "width": 16},
    {"name": "top", "type": "top", "input": "x", "latent": 2, "width": 16},
    {"name": "s", "type": "simple", "input": "top", "width": 16},
    {"name": "g", "type": "gen", "input": "s", "latent": 2, "width": 16},
    {"name": "d", "type": "dual", "input": "g", "input2": "top", "width": 16, "merge": "sum", "condition_transform": "silu"},
    {"name": "out", "type": "output", "input": "d", "width": 16},
]


def test_a_dual_on_the_top_down_side_joins_the_state_with_a_block_above():
    rec = Recorder()
    method, state = trained(tiny_cfg("hvae", 2, {"hvae.blocks": DUAL_DOWN}), blob(), rec)
    graph, nets = method.graph, state.net
    assert [b.name for b in graph.bottom_up] == ["x"] and [b.name for b in graph.top_down] == ["top", "s", "g", "d"]
    assert [b.name for b in graph.latents] == ["top", "g"]
    x, g = blob(8, seed=1), torch.Generator().manual_seed(0)
    layers, px = method.top_down(nets, 8, g, method.bottom_up(nets, x), mean=True)
    s_top = nets["top"].next_state(None, layers[0].z, None)
    s_g = nets["g"].next_state(None, layers[1].z, nets["g"].prior(nets["s"](s_top), 8)[1])
    want = nets["out"](nets["d"](s_g, torch.nn.functional.silu(s_top)))
    assert torch.equal(px.mu, want.mu)
    assert torch.isfinite(method.iwae_log_likelihood(nets, x, 2, g)).all()


@pytest.mark.parametrize("changes, key, words", [
    ({4: {"input2": "x"}}, "hvae.blocks[4].input2", "top-down block"),  # a bottom-up feature into a top-down dual
    ({3: {"input": "d"}, 4: {"input": "s", "input2": "g"}, 5: {"input": "g"}}, "hvae.blocks[4].input2", "above d on the chain: one of top, s"),
    ({4: {"input2": "d"}}, "hvae.blocks[4].input2", "above d"),  # itself
    ({1: {"width": 8}}, "hvae.blocks[4].merge", "inputs of one width"),
])
def test_a_top_down_dual_reads_blocks_above_it(changes, key, words):
    blocks = [{**b, **changes.get(i, {})} for i, b in enumerate(DUAL_DOWN)]
    with pytest.raises(ConfigError) as info:
        parse_graph(blocks)
    assert info.value.key == key and words in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_image_checks_of_the_new_types():
    blocks = [
        {"name": "x", "type": "input", "width": 4},
        {"name": "h", "type": "encoder", "input": "x", "width": 4, "scale": 2},
        {"name": "d", "type": "dual", "input": "x", "input2": "h", "width": 4},
        {"name": "top", "type": "top_simple", "latent": 2, "width": 4},
        {"name": "g", "type": "gen", "input": "top", "skip": "d", "latent": 2, "width": 4},
        {"name": "out", "type": "output", "input": "g", "width": 4},
    ]
    for change, key, words in [({}, "hvae.blocks[2].input2", "side 8 of x; h is at 4"),
                               ({1: {"scale": 1}}, "hvae.blocks[3].side", "the top latent's side"),
                               ({1: {"scale": 1}, 3: {"side": 8}}, None, None)]:
        graph = [{**b, **change.get(i, {})} for i, b in enumerate(blocks)]
        if key is None:
            nets = HVAE(HVAEParams(blocks=tuple(graph))).networks((1, 8, 8))
            assert nets["top"].prior_mu.shape == (2, 8, 8)
            continue
        with pytest.raises(ConfigError) as info:
            HVAE(HVAEParams(blocks=tuple(graph))).networks((1, 8, 8))
        assert info.value.key == key and words in str(info.value), str(info.value)


def test_a_top_down_dual_on_images_joins_maps_of_one_side():
    blocks = [{**b, "width": 4} for b in DUAL_DOWN]
    blocks[1:3] = [{"name": "top", "type": "top_simple", "latent": 2, "width": 4, "side": 4},
                   {"name": "s", "type": "simple", "input": "top", "width": 4, "scale": 2}]
    with pytest.raises(ConfigError) as info:
        HVAE(HVAEParams(blocks=tuple(blocks))).networks((1, 8, 8))
    assert info.value.key == "hvae.blocks[4].input2" and "side 8 of g; top is at 4" in str(info.value), str(info.value)
    blocks[4] = {**blocks[4], "input2": "s"}
    method = HVAE(HVAEParams(blocks=tuple(blocks)))
    _, px = method.top_down(method.networks((1, 8, 8)), 3, torch.Generator().manual_seed(0))
    assert px.mu.shape == (3, 1, 8, 8)


def test_dense_pool_and_unpool_reach_and_leave_1x1():
    blocks = [
        {"name": "x", "type": "input", "width": 4},
        {"name": "h1", "type": "encoder", "input": "x", "width": 6, "scale": 8, "pool": "dense"},
        {"name": "top", "type": "top", "input": "h1", "latent": 3, "width": 5},
        {"name": "s", "type": "simple", "input": "top", "width": 4, "scale": 8, "unpool": "dense"},
        {"name": "out", "type": "output", "input": "s", "width": 4},
    ]
    method = HVAE(HVAEParams(blocks=tuple(blocks)))
    nets = method.networks((1, 8, 8))
    x = torch.zeros(2, 1, 8, 8)
    x[0, 0, :4] = 1.0  # the same mean, other places: an average pool could not tell them apart
    x[1, 0, 4:] = 1.0
    h = method.bottom_up(nets, x)["h1"]
    assert h.shape == (2, 6, 1, 1) and not torch.allclose(h[0], h[1])
    assert nets["s"].unpool.out_features == 5 * 64 and method.sample(nets, (2, 1, 8, 8), 1, torch.Generator()).shape == (2, 1, 8, 8)
    at_side_4 = [{**b, "scale": 2} if j in (1, 3) else b for j, b in enumerate(blocks)]  # the top at 4x4
    for i, key in ((1, "pool"), (3, "unpool")):
        bad = [{k: v for k, v in b.items() if k != "pool"} if j == 1 and key == "unpool" else b for j, b in enumerate(at_side_4)]
        with pytest.raises(ConfigError) as info:
            HVAE(HVAEParams(blocks=tuple(bad))).networks((1, 8, 8))
        assert info.value.key == f"hvae.blocks[{i}].{key}" and "side 1" in str(info.value), str(info.value)


def test_a_block_type_without_a_role_is_refused(monkeypatch):
    monkeypatch.setitem(HVAE_BLOCKS._impls, "test_bad", object)
    monkeypatch.setitem(HVAE_BLOCKS._specs, "test_bad", object)
    with pytest.raises(ConfigError) as info:
        parse_graph(_with(CUSTOM, 1, type="test_bad", config=None))
    assert info.value.key == "hvae.blocks[1].type" and "role" in str(info.value)
    not_a_block = type("NotABlock", (), {"role": "bottom_up"})  # a role, but no CustomBlock
    monkeypatch.setitem(HVAE_BLOCKS._impls, "test_bad", not_a_block)
    monkeypatch.setitem(HVAE_BLOCKS._specs, "test_bad", not_a_block)
    with pytest.raises(ConfigError) as info:
        HVAE(HVAEParams(blocks=tuple(_with(CUSTOM, 1, type="test_bad", config=None)))).networks((2,))
    assert info.value.key == "hvae.blocks[1].type" and "CustomBlock" in str(info.value)


@pytest.mark.parametrize("dotted, value, key", [
    ("hvae.kl_warmup_steps", -1, "hvae.kl_warmup_steps"),
    ("hvae.kl_warmup_start", 1.0, "hvae.kl_warmup_start"),
    ("hvae.kl_schedule", "sigmoid", "hvae.kl_schedule"),
    ("hvae.kl_schedule", "cosine", "hvae.kl_schedule"),  # kl_warmup_steps 0: nothing to run over
    ("hvae.kl_cycles", 3, "hvae.kl_cycles"),  # the linear schedule has no cycles
    ("hvae.kl_ratio", 0.0, "hvae.kl_ratio"),
    ({"hvae.kl_schedule": "cyclical", "hvae.kl_warmup_steps": 3, "hvae.kl_cycles": 4}, None, "hvae.kl_cycles"),
    ("hvae.likelihood", "discretized_logistic", "hvae.likelihood"),  # 2D points: gaussian only
    ("hvae.likelihood", "poisson", "hvae.likelihood"),
])
def test_bad_new_params(dotted, value, key):
    with pytest.raises(ConfigError) as info:
        load(ROOT / "params.yaml", {"method": "hvae", **(dotted if isinstance(dotted, dict) else {dotted: value})})
    assert info.value.key == key and "\n" not in str(info.value)


def test_the_two_transform_lists_agree():
    assert list(TRANSFORMS) == list(B.TRANSFORMS)
