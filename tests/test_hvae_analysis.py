"""The hierarchical VAE's analysis tools: the linear probes of decodability, white-noise receptive
fields, the most exciting inputs and the traversals of every layer."""
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from genlib.config import load
from genlib.data.splits import Splits
from genlib.errors import ConfigError
from genlib.methods.hvae import HVAE, HVAEParams
from genlib.methods.hvae.analysis import N_PATHS, TRAVERSAL, traversals
from genlib.methods.hvae.blocks import Gaussian
from genlib.methods.hvae.method import Layer
from genlib.methods.hvae.probes import decodability, probe_accuracy, probe_r2
from genlib.methods.hvae.receptive import N_NOISE, most_exciting, receptive_fields

from family_helpers import ROOT
from test_hvae import SMALL


def test_the_probes_find_what_is_linear_in_the_features_and_nothing_else():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3000, 2, generator=g)
    labels = (x[:, 0] - x[:, 1] > 0).long()  # linear in x
    assert probe_accuracy(x[:2000], labels[:2000], x[2000:], labels[2000:], 2) > 0.97
    noise = torch.randn(3000, 3, generator=g)  # independent of the labels: chance, within 4 sd of 1000 tests
    assert abs(probe_accuracy(noise[:2000], labels[:2000], noise[2000:], labels[2000:], 2) - 0.5) < 4 * 0.5 / math.sqrt(1000)
    assert probe_r2(x[:2000] @ torch.tensor([[1.0, 2.0], [3.0, -1.0]]), x[:2000], x[2000:] @ torch.tensor([[1.0, 2.0], [3.0, -1.0]]), x[2000:]) > 0.999
    assert abs(probe_r2(noise[:2000], x[:2000], noise[2000:], x[2000:])) < 0.02  # 3 useless features over 1000 tests


def test_decodability_scores_every_layer():
    method = HVAE(HVAEParams(blocks=tuple(SMALL)))
    torch.manual_seed(0)
    nets = method.networks((2,)).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(600, 2, generator=g)
    labels = (x[:, 0] > 0).long()
    out = decodability(method, nets, x[:400], x[400:], labels[:400], labels[400:], g)
    assert set(out) == {"decodability_chance", "decodability_layer0", "decodability_layer1", "decodability_layer2"}
    assert out["decodability_chance"] == float(torch.bincount(labels[400:]).max() / 200)
    r2 = decodability(method, nets, x[:400], x[400:], None, None, g)
    assert set(r2) == {f"decodability_layer{i}" for i in range(3)} and all(v <= 1 for v in r2.values())


def test_a_layer_without_a_posterior_is_read_at_its_prior_mean():
    from genlib.methods.hvae.probes import posterior_means
    from test_hvae_blocks import EVERY

    method = HVAE(HVAEParams(blocks=tuple(EVERY)))
    torch.manual_seed(0)
    nets = method.networks((2,)).eval()
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    means = posterior_means(method, nets, x, torch.Generator().manual_seed(2))
    with torch.no_grad():
        layers, _ = method.top_down(nets, 50, torch.Generator(), method.bottom_up(nets, x), mean=True)
    assert len(means) == 3 and layers[1].q is None  # top (Laplace), g (gen_prior), r
    assert torch.equal(means[1], layers[1].p.mu) and torch.equal(means[0], layers[0].q.mu)


class Linear:
    """A one-layer stand-in whose posterior mean is ``x @ A``: its receptive fields are known."""

    def __init__(self, a: torch.Tensor) -> None:
        self.a = a
        self.graph = SimpleNamespace(latents=[SimpleNamespace(name="z", skip="x", input="x")])

    def bottom_up(self, nets, x):
        return {"x": x}

    def top_down(self, nets, n, generator, feats, mean=False):
        mu = feats["x"] @ self.a
        q = Gaussian(mu, torch.zeros_like(mu))
        return [Layer(mu, q, q)], None


def test_white_noise_recovers_a_linear_encoders_fields():
    a = torch.tensor([[1.0, 0.0, 2.0], [0.0, -3.0, 2.0]])  # input dims x latent dims
    like = torch.randn(500, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 4.0])
    (field,) = receptive_fields(Linear(a), nn.Linear(1, 1), like, torch.Generator().manual_seed(2))
    # white noise of the data's spread: corr(mu_k, x_j) = a_jk s_j / sqrt(sum_i a_ik^2 s_i^2)
    s = like.std(0)
    want = (a * s[:, None] / (a * s[:, None]).norm(dim=0)).T
    assert field.shape == (3, 2)
    assert torch.allclose(field, want, atol=5 / math.sqrt(N_NOISE))


def test_most_exciting_inputs_are_the_largest_means():
    z = torch.tensor([[0.0, 5.0], [3.0, -1.0], [1.0, 2.0], [2.0, 0.0]])
    assert [i.tolist() for i in most_exciting(z, 2)] == [[1, 3], [0, 2]]
    images = torch.zeros(5, 2, 3, 3)
    images[4, 1, 1, 1] = 9.0  # channel 1 at the centre of its grid
    images[2, 1, 0, 0] = 99.0  # off the centre: not what channel 1 is read at
    assert most_exciting(images, 1)[1].tolist() == [4]


def test_traversals_of_a_lower_layer_pass_through_its_prior_mean():
    method = HVAE(HVAEParams(blocks=tuple(SMALL)))
    torch.manual_seed(0)
    nets = method.networks((2,)).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        panels = traversals(method, nets, g, layer=2)
        _, px = method.top_down(nets, 1, g, mean=True)
    assert [title for title, _, _ in panels] == ["low[0]", "low[1]"]
    middle = len(TRAVERSAL) // 2  # t = 0
    for _, curves, values in panels:
        assert curves.shape == (N_PATHS, len(TRAVERSAL), 2) and values[middle] == 0
        assert torch.allclose(torch.from_numpy(curves[0, middle]), px.mu[0], atol=1e-6)  # every layer at its prior mean
        assert (abs(curves[0, -1] - curves[0, 0]) > 0).any()  # moving z_low moves x


@pytest.mark.parametrize("method, value, allowed", [
    ("hvae", ["traversals", "nonesuch"], "null (all) or a list of decodability, traversals, receptive_fields, most_exciting"),
    ("hvae", ["traversals", "traversals"], "null or a list of analyses, each once"),
    ("ddpm", ["traversals"], "null: method ddpm has no analyses to choose"),
])
def test_eval_analysis_is_checked_at_the_door(method, value, allowed):
    with pytest.raises(ConfigError) as info:
        load(ROOT / "params.yaml", {"method": method, "eval.analysis": value})
    assert info.value.key == "eval.analysis" and info.value.allowed == allowed


def test_eval_analysis_chooses_the_figures_and_the_numbers(tmp_path):
    method = HVAE(HVAEParams(blocks=tuple(SMALL)))
    torch.manual_seed(0)
    nets = method.networks((2,)).eval()
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    only = SimpleNamespace(analysis=("most_exciting",))
    assert method.representation_metrics(nets, Splits(x, x), torch.Generator(), only) == {}
    metrics = {f"kl_layer{i}": 0.5 for i in range(3)}
    figures = method.analysis(nets, x, torch.Generator().manual_seed(0), tmp_path, only, {}, metrics)
    assert [f for _, f in figures] == ["kl_layers.png", "reconstructions.png", "prior_samples.png", "most_exciting.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f for _, f in figures)
