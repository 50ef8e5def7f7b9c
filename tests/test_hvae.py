"""The hierarchical VAE: shapes, a falling loss, the bounds, seeded sampling, exact resume, the
block graph's checks, the one-file model and the pipeline's analysis figures."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from genlib.pipeline.trained import load_trained
from genlib.config import load
from genlib.errors import ConfigError
from genlib.methods.hvae import HVAE, HVAEParams, load_model, save_model
from genlib.methods.hvae.blocks import Gaussian
from genlib.methods.hvae.graph import parse_graph

from family_helpers import (ROOT, Recorder, assert_resume_is_exact, assert_seeded_sampling, blob, run_pipeline,
                            tiny_cfg, trained)

LADDER = ROOT / "configs" / "hvae" / "ladder_2d.yaml"
SMALL = [  # a small graph with every block type, for fast tests
    {"name": "x", "type": "input", "width": 32},
    {"name": "h", "type": "encoder", "input": "x", "width": 32},
    {"name": "top", "type": "top", "input": "h", "latent": 3, "width": 32},
    {"name": "mid", "type": "gen", "input": "top", "skip": "h", "latent": 2, "width": 32},
    {"name": "low", "type": "residual", "input": "mid", "latent": 2, "width": 32},
    {"name": "out", "type": "output", "input": "low", "width": 32},
]


def small():
    return HVAE(HVAEParams(blocks=tuple(SMALL)))


def test_shapes_and_graph_order():
    method = small()
    assert [b.name for b in method.graph.blocks] == ["x", "h", "top", "mid", "low", "out"]
    assert method.graph.latents[2].skip == "x"  # the default skip: the input block
    nets = method.networks((2,))
    assert list(nets) == ["x", "h", "top", "mid", "low", "out"]
    x, g = blob(10), torch.Generator().manual_seed(0)
    feats = method.bottom_up(nets, x)
    assert feats["x"].shape == feats["h"].shape == (10, 32)
    layers, px = method.top_down(nets, 10, g, feats)
    assert [tuple(layer.z.shape) for layer in layers] == [(10, 3), (10, 2), (10, 2)]
    assert px.mu.shape == (10, 2) and px.out.shape == (10, 4)  # the mean, then the log-variance
    recon, kl = method.terms(nets, x, g)
    assert recon.shape == (10,) and kl.shape == (10, 3) and (kl >= 0).all()
    assert method.sample(nets, (7, 2), 1, g).shape == (7, 2)
    assert method.iwae_log_likelihood(nets, x, 5, g).shape == (10,)


def test_kl_matches_monte_carlo():
    # The closed-form KL(q || p) of two diagonal Gaussians against a Monte Carlo average of log q - log p.
    q = Gaussian(torch.tensor([[0.5, -1.0]]), torch.tensor([[-0.7, 0.3]]))
    p = Gaussian(torch.tensor([[0.2, 0.4]]), torch.tensor([[0.5, -0.2]]))
    z = q.mu + (0.5 * q.logvar).exp() * torch.randn(200_000, 2, generator=torch.Generator().manual_seed(0))
    mc = (q.log_prob(z) - p.log_prob(z)).mean()
    assert abs(float(mc - q.kl(p).sum())) < 5 * 3.0 / math.sqrt(200_000)  # 5 standard errors (var of log ratio < 9)


def test_free_bits_floor_each_layers_batch_kl():
    """Each layer's batch-mean KL counts as at least ``free_bits`` nats, and below it gets no
    gradient (Kingma et al. 2016, Eq. 15); ``free_bits: 0`` is the plain negative ELBO."""
    recon = torch.tensor([1.0, 3.0])
    kl = torch.tensor([[0.1, 2.0, 0.2], [0.3, 1.0, 0.2]], requires_grad=True)
    objective = HVAE(HVAEParams(blocks=tuple(SMALL), free_bits=0.5)).objective(recon, kl)
    assert torch.isclose(objective, torch.tensor(2.0 + 0.5 + 1.5 + 0.5))
    objective.backward()
    assert torch.equal(kl.grad, torch.tensor([[0.0, 0.5, 0.0], [0.0, 0.5, 0.0]]))
    plain = HVAE(HVAEParams(blocks=tuple(SMALL), free_bits=0.0)).objective(recon, kl)
    assert torch.isclose(plain, (recon + kl.sum(-1)).mean())


def test_loss_decreases_and_layer_kls_are_logged():
    rec = Recorder()
    trained(tiny_cfg("hvae", epochs=40, overrides={"hvae.blocks": SMALL}), blob(), rec)  # 320 steps
    losses = [v["loss"] for _, v in rec.rows]
    assert {"loss", "grad_norm", "lr", "recon_nll", "kl", "kl_l0", "kl_l1", "kl_l2"} <= set(rec.rows[0][1])
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 1.0  # nats per point
    last = rec.rows[-1][1]
    assert abs(last["kl"] - last["kl_l0"] - last["kl_l1"] - last["kl_l2"]) < 1e-4


def test_likelihood_metrics_and_seeded_sampling():
    cfg = tiny_cfg("hvae", 10, {"eval.n_importance": 32})
    method, state = trained(cfg, blob())
    nets = state.ema.models[0.99]
    m = method.extra_metrics(nets, blob(500, seed=1), torch.Generator().manual_seed(0), cfg.eval)
    assert set(m) == {"elbo", "nll_iwae", "recon_mse", "kl", "kl_layer0", "kl_layer1", "kl_layer2"}
    assert m["nll_iwae"] <= -m["elbo"] + 0.05  # the IWAE bound is at least as tight as the ELBO (Burda et al., Thm. 1)
    assert abs(m["kl"] - sum(m[f"kl_layer{i}"] for i in range(3))) < 1e-4
    assert_seeded_sampling(method, nets)


def test_importance_draws_in_chunks_estimate_the_same_bound(monkeypatch):
    # The K draws go down in chunks to bound the memory on images; chunks of 3 (and a remainder
    # of 2) must estimate what one pass does. Two independent estimates, each a mean over 500
    # points of a per-point spread of about 0.1 nats: 0.05 is over 5 standard errors of the gap.
    import genlib.methods.hvae.method as hvae_method

    method, state = trained(tiny_cfg("hvae", 10), blob())
    nets, x = state.ema.models[0.99], blob(500, seed=1)
    whole = method.iwae_log_likelihood(nets, x, 32, torch.Generator().manual_seed(0))
    monkeypatch.setattr(hvae_method, "IWAE_CHUNK", 3 * x.numel())
    chunked = method.iwae_log_likelihood(nets, x, 32, torch.Generator().manual_seed(1))
    assert chunked.shape == whole.shape == (500,)
    assert abs(float(chunked.mean() - whole.mean())) < 0.05


def test_resume_round_trip_is_exact(tmp_path):
    assert_resume_is_exact(tiny_cfg("hvae", epochs=3), blob(), tmp_path)


def test_model_file_round_trip(tmp_path):
    """One file rebuilds the model without params: same graph, same weights, same outputs."""
    method = small()
    torch.manual_seed(0)
    nets = method.networks((2,))
    save_model(tmp_path / "hvae.pt", nets, method.params, (2,))
    loaded, loaded_nets, shape = load_model(tmp_path / "hvae.pt")
    assert shape == (2,) and loaded.graph == method.graph and loaded.params.beta == method.params.beta
    x = blob(50)
    a = method.terms(nets, x, torch.Generator().manual_seed(1))
    b = loaded.terms(loaded_nets, x, torch.Generator().manual_seed(1))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert torch.equal(method.sample(nets, (20, 2), 1, torch.Generator().manual_seed(2)),
                       loaded.sample(loaded_nets, (20, 2), 1, torch.Generator().manual_seed(2)))


def test_model_file_param_reads_the_graph():
    cfg = load(ROOT / "params.yaml", {"method": "hvae", "hvae.model_file": str(LADDER)})
    graph = cfg.method_params.graph
    assert [b.type for b in graph.blocks] == ["input", "encoder", "top", "gen", "residual", "residual", "output"]
    assert cfg.to_dict()["hvae"]["blocks"][1] == {"name": "h", "type": "encoder", "input": "x", "width": 128}


def _graph_error(blocks):
    with pytest.raises(ConfigError) as info:
        parse_graph(blocks)
    assert "\n" not in str(info.value)
    return info.value


def _without(name):
    return [b for b in SMALL if b["name"] != name]


def _with(i, **changes):
    return [{**b, **changes} if j == i else b for j, b in enumerate(SMALL)]


@pytest.mark.parametrize("blocks, key, words", [
    (_without("x"), "hvae.blocks", "type input"),
    (SMALL + [{"name": "x2", "type": "input", "width": 8}], "hvae.blocks[6].type", "one input block"),
    (_without("out"), "hvae.blocks", "type output"),
    (_with(2, type="gen", skip="x"), "hvae.blocks", "type top"),
    (_with(3, input="nowhere"), "hvae.blocks[3].input", "one of low, top"),
    (_with(2, input="mid"), "hvae.blocks[2].input", "bottom-up"),
    (_with(3, skip="low"), "hvae.blocks[3].skip", "bottom-up"),
    (_with(3, input="low"), "hvae.blocks[3].input", "cycle mid -> low -> mid"),
    (_with(1, input="h"), "hvae.blocks[1].input", "cycle h -> h"),
    (_with(4, type="conv"), "hvae.blocks[4].type", "'input', 'encoder'"),
    (_with(4, latent=None), "hvae.blocks[4].latent", "needs input, latent, width"),
    (_with(4, latent=0), "hvae.blocks[4].latent", "positive"),
    (_with(0, width="wide"), "hvae.blocks[0].width", "integer"),
    (_with(0, input="h"), "hvae.blocks[0].input", "takes width, depth"),
    (_with(4, widht=32), "hvae.blocks[4].widht", "did you mean 'width'"),
    (_with(4, width=16), "hvae.blocks[4].width", "keeps the width of its input mid"),
    (_with(3, name="top"), "hvae.blocks[3].name", "no other block"),
    (_with(3, name="a.b"), "hvae.blocks[3].name", "letters"),
    (SMALL + [{"name": "side", "type": "gen", "input": "top", "latent": 2, "width": 8}], "hvae.blocks[6].name", "one chain"),
    (SMALL + [{"name": "h2", "type": "encoder", "input": "x", "width": 8}], "hvae.blocks[6].name", "feeds the output"),
    ([], "hvae.blocks", "non-empty list"),
])
def test_graph_errors_name_the_key(blocks, key, words):
    err = _graph_error(blocks)
    assert err.key == key and words in str(err), str(err)


def test_graph_errors_at_the_door(tmp_path):
    bad = [{k: v for k, v in b.items() if k != "input"} if b["type"] == "output" else b for b in SMALL]
    with pytest.raises(ConfigError) as info:
        load(ROOT / "params.yaml", {"method": "hvae", "hvae.blocks": bad})
    assert info.value.key == "hvae.blocks[5].input"
    with pytest.raises(ConfigError) as info:
        load(ROOT / "params.yaml", {"method": "hvae", "hvae.model_file": str(tmp_path / "missing.yaml")})
    assert info.value.key == "hvae.model_file" and "\n" not in str(info.value)
    no_output = tmp_path / "no_output.yaml"
    no_output.write_text(json.dumps({"blocks": _without("out")}))
    with pytest.raises(ConfigError) as info:
        load(ROOT / "params.yaml", {"method": "hvae", "hvae.model_file": str(no_output)})
    assert info.value.key == f"hvae.model_file {no_output}: blocks" and "type output" in str(info.value)


@pytest.mark.parametrize("dotted, value, key", [
    ("hvae.beta", 0, "hvae.beta"),
    ("hvae.likelihood", "bernoulli", "hvae.likelihood"),
    ("hvae.blocks", "x", "hvae.blocks"),
    ("eval.sampler", "ddim", "eval.sampler"),
    ("run.compile", True, "run.compile"),
])
def test_bad_params(dotted, value, key):
    with pytest.raises(ConfigError) as info:
        load(ROOT / "params.yaml", {"method": "hvae", dotted: value})
    assert info.value.key == key and "\n" not in str(info.value)


def test_pipeline_writes_the_model_file_and_analysis(tmp_path):
    cfg, paths, info, metrics = run_pipeline(tmp_path, "hvae", {"hvae.blocks": SMALL, "eval.n_importance": 8})
    assert info["sampler"] == "prior"
    assert np.load(paths.samples / "samples.npy").shape == (400, 2)
    assert {"w1_exact", "elbo", "nll_iwae", "recon_mse", "kl", "kl_layer0", "kl_layer2"} <= set(metrics)
    assert all(np.isfinite(metrics[k]) for k in ("elbo", "nll_iwae", "recon_mse"))
    assert {f"decodability_layer{i}" for i in range(3)} <= set(metrics) and "decodability_chance" not in metrics  # no labels: R^2
    figures = json.loads((paths.analysis / "index.json").read_text())
    assert [f["file"] for f in figures] == ["kl_layers.png", "decodability.png", "reconstructions.png", "prior_samples.png",
                                            *(f"traversals_layer{i}.png" for i in range(3)), "receptive_fields.png", "most_exciting.png"]
    report = (paths.report / "report.md").read_text()
    assert all(f"## {f['caption']}" in report and (paths.report / f["file"]).is_file() for f in figures)
    assert "| kl_layer1 |" in report and "KL of latent layer 1 (mid; 0 is the top)" in report
    assert (paths.train_log / "plots" / "metrics" / "kl_l2.tsv").is_file()
    method, nets, _ = load_model(paths.model / "hvae.pt")  # the first EMA's weights, as eval.ema: 0.99 samples
    ema, _ = load_trained(cfg, paths)
    assert all(torch.equal(a, b) for a, b in zip(nets.state_dict().values(), ema.state_dict().values()))


def test_compare_shows_an_hvae_experiment(tmp_path):
    """``genlib compare`` gives an hvae experiment its row beside the others (method differs)."""
    import copy

    import yaml

    from genlib.compare import compare, parse_exp_show
    from test_compare import FIXTURE

    rows = json.loads(FIXTURE.read_text())
    section = yaml.safe_load((ROOT / "params.yaml").read_text())["hvae"]
    for commit in rows:  # every experiment of this params.yaml has the section
        for rev in [commit] + [r for e in commit.get("experiments") or [] for r in e["revs"]]:
            ((rev.get("data") or {}).get("params") or {}).get("params.yaml", {}).get("data", {})["hvae"] = section
    hvae = copy.deepcopy(rows[1]["experiments"][0])
    rev = hvae["revs"][0]
    rev["name"] = "hier"
    rev["data"]["params"]["params.yaml"]["data"]["method"] = "hvae"
    rev["data"]["metrics"]["metrics/eval.json"]["data"].update(w1_exact=0.19, elbo=-1.7, nll_iwae=1.5)
    rows[1]["experiments"].append(hvae)
    lines = compare(parse_exp_show(rows), tmp_path)
    assert lines[0].startswith("| method | eval.reverse_steps | n | sampler | w1_exact ↓")
    assert any(line.startswith("| hvae | 10 | 1 | default | **0.19** |") for line in lines)  # its configuration
    assert any(line.startswith("| hier | hvae | 10 | default | **0.19** |") for line in lines)  # and its experiment


IMAGE_BLOCKS = [  # 16x16 images: latents at 8x8 and 16x16
    {"name": "x", "type": "input", "width": 8},
    {"name": "h8", "type": "encoder", "input": "x", "width": 8, "scale": 2},
    {"name": "top", "type": "top", "input": "h8", "latent": 2, "width": 8},
    {"name": "up", "type": "residual", "input": "top", "skip": "x", "latent": 2, "width": 8, "scale": 2},
    {"name": "out", "type": "output", "input": "up", "width": 8},
]


def squares(n=256, seed=0):
    """16x16 images in [-1, 1]: a bright 4x4 square at one of four places on a dark ground."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n, 1, 16, 16), -1.0)
    for i, k in enumerate(torch.randint(0, 4, (n,), generator=g).tolist()):
        r, c = 2 + 8 * (k // 2), 2 + 8 * (k % 2)
        x[i, :, r:r + 4, c:c + 4] = 1.0
    return x + 0.05 * torch.randn(x.shape, generator=g)


def test_images_shapes_training_and_sampling():
    cfg = tiny_cfg("hvae", 8, {"hvae.blocks": IMAGE_BLOCKS})  # 8 steps of 256 images
    rec = Recorder()
    method, state = trained(dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, batch_size=64)), squares(), rec)
    nets = state.net
    assert type(nets["up"].p[0]).__name__ == "Conv2d" and nets["top"].prior_mu.shape == (2, 8, 8)
    layers, px = method.top_down(nets, 3, torch.Generator().manual_seed(0), method.bottom_up(nets, squares(3)))
    assert [tuple(layer.z.shape) for layer in layers] == [(3, 2, 8, 8), (3, 2, 16, 16)] and px.mu.shape == (3, 1, 16, 16)
    losses = [v["loss"] for _, v in rec.rows]
    assert losses[-1] < losses[0] - 100  # nats per image, from the untrained start
    draw = lambda seed: method.sample(nets, (5, 1, 16, 16), 1, torch.Generator().manual_seed(seed))  # noqa: E731
    assert draw(1).shape == (5, 1, 16, 16) and torch.equal(draw(1), draw(1)) and not torch.equal(draw(1), draw(2))
    assert method.iwae_log_likelihood(nets, squares(4), 3, torch.Generator().manual_seed(0)).shape == (4,)


@pytest.mark.parametrize("change, key, words", [
    ({1: {"scale": 3}}, "hvae.blocks[1].scale", "a divisor of its input's side 16"),
    ({3: {"skip": "h8"}}, "hvae.blocks[3].skip", "side 16"),
    ({3: {"scale": 1, "skip": "h8"}}, "hvae.blocks[4].input", "the data's side 16"),
])
def test_image_resolutions_are_checked(change, key, words):
    blocks = [{**b, **change.get(i, {})} for i, b in enumerate(IMAGE_BLOCKS)]
    with pytest.raises(ConfigError) as info:
        HVAE(HVAEParams(blocks=tuple(blocks))).networks((1, 16, 16))
    assert info.value.key == key and words in str(info.value) and "\n" not in str(info.value)


def test_scale_is_for_images_only():
    with pytest.raises(ConfigError) as info:
        HVAE(HVAEParams(blocks=tuple(IMAGE_BLOCKS))).networks((2,))
    assert info.value.key == "hvae.blocks[1].scale"


MNIST = ROOT.parent / "shared" / "datasets" / "mnist" / "raw"


GLOBAL_TOP = [  # 16x16 images: a 1x1 top latent, a deterministic block up to 8x8, a latent at 16x16
    {"name": "x", "type": "input", "width": 8},
    {"name": "h8", "type": "encoder", "input": "x", "width": 8, "scale": 2},
    {"name": "h1", "type": "encoder", "input": "h8", "width": 8, "scale": 8},
    {"name": "top", "type": "top", "input": "h1", "latent": 4, "width": 8},
    {"name": "s8", "type": "simple", "input": "top", "width": 8, "scale": 8},
    {"name": "up", "type": "residual", "input": "s8", "skip": "x", "latent": 2, "width": 8, "scale": 2},
    {"name": "out", "type": "output", "input": "up", "width": 8},
]


@pytest.mark.skipif(not MNIST.is_dir(), reason="no MNIST files in shared/datasets")
@pytest.mark.parametrize("blocks, lik, shift", [(IMAGE_BLOCKS, "gaussian", 7), (GLOBAL_TOP, "discretized_logistic", 0)])
def test_tiny_mnist_pipeline_writes_image_figures(tmp_path, blocks, lik, shift):
    from test_images_pipeline import TINY_IMAGES

    overrides = {**TINY_IMAGES, "hvae.blocks": blocks, "method": "hvae", "hvae.likelihood": lik, "hvae.kl_warmup_steps": 4}
    cfg, paths, info, metrics = run_pipeline(tmp_path, "hvae", overrides)
    assert np.load(paths.samples / "samples.npy").shape == (96, 1, 16, 16) and info["n_nonfinite"] == 0
    assert np.isfinite(metrics["fid_clf"])
    # a density on dequantized pixels: bits/dim = nll / (D ln 2) + 7; a mass on the 8-bit levels: + 0
    assert metrics["bits_per_dim"] == pytest.approx(metrics["nll_iwae"] / (256 * math.log(2)) + shift)
    assert metrics["nll_iwae"] <= -metrics["elbo"] + 1.0
    assert 0 <= metrics["decodability_chance"] < 1 and 0 <= metrics["decodability_layer1"] <= 1  # MNIST has labels
    figures = json.loads((paths.analysis / "index.json").read_text())
    assert [f["file"] for f in figures] == ["kl_layers.png", "decodability.png", "reconstructions.png", "prior_samples.png",
                                            *(f"traversals_layer{i}.png" for i in range(2)), "receptive_fields.png", "most_exciting.png"]
    assert all((paths.report / f["file"]).is_file() for f in figures)


def test_mnist_config_points_at_the_image_model_file():
    cfg = load(ROOT / "configs" / "mnist.yaml", {"method": "hvae", "data.root": str(MNIST), "hvae.model_file": str(ROOT / "configs/hvae/mnist.yaml")})
    graph = cfg.method_params.graph
    assert [b.type for b in graph.top_down] == ["top", "residual", "simple", "simple", "simple"]
    assert cfg.method_params.likelihood == "discretized_logistic" and cfg.method_params.kl_warmup_steps > 0
    HVAE(cfg.method_params).networks((1, 28, 28))  # the resolutions fit MNIST
