"""The VAE: shapes, a falling loss, the likelihood bounds, seeded sampling, exact resume, pipeline."""
import json
import math

import numpy as np
import pytest
import torch

from genlib.pipeline.evaluate import evaluate_stage
from genlib.config import load
from genlib.errors import ConfigError
from genlib.methods.vae import VAE, VAEParams

from family_helpers import (ROOT, Recorder, assert_resume_is_exact, assert_seeded_sampling, blob, run_pipeline,
                            tiny_cfg, trained)


@pytest.mark.parametrize("decoder_var", ["learned", "fixed"])
def test_shapes(decoder_var):
    vae = VAE(VAEParams(latent_dim=3, decoder_var=decoder_var))
    nets = vae.networks((2,))
    x = blob(10)
    mu, logvar = vae.encode(nets, x)
    mean, dec_logvar = vae.likelihood(1).mean_logvar(nets["decoder"](mu))
    assert mu.shape == logvar.shape == (10, 3) and mean.shape == dec_logvar.shape == (10, 2)
    recon, kl = vae.terms(nets, x, torch.Generator().manual_seed(0))
    assert recon.shape == (10,) and kl.shape == (10, 3) and (kl >= 0).all()
    assert vae.sample(nets, (7, 2), 1, torch.Generator().manual_seed(0)).shape == (7, 2)


def test_kl_matches_monte_carlo():
    # The closed-form KL(q || N(0, I)) against a large Monte Carlo average of log q - log p.
    from genlib.methods.vae import gaussian_log_prob

    mu, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[-0.7, 0.3]])
    g = torch.Generator().manual_seed(0)
    z = mu + (0.5 * logvar).exp() * torch.randn(200_000, 2, generator=g)
    mc = (gaussian_log_prob(z, mu, logvar) - gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))).mean()
    closed = (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).sum()
    assert abs(float(mc - closed)) < 5 * 2.5 / math.sqrt(200_000)  # 5 standard errors (var of log ratio < 6)


def test_loss_decreases_and_terms_are_logged():
    rec = Recorder()
    trained(tiny_cfg("vae", epochs=40), blob(), rec)  # 320 steps
    losses = [v["loss"] for _, v in rec.rows]
    assert {"loss", "grad_norm", "lr", "recon_nll", "kl"} <= set(rec.rows[0][1])
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 1.0  # nats per point


def test_likelihood_metrics_and_seeded_sampling():
    cfg = tiny_cfg("vae", 10, {"eval.n_importance": 32})
    method, state = trained(cfg, blob())
    nets = state.ema.models[0.99]
    m = method.extra_metrics(nets, blob(500, seed=1), torch.Generator().manual_seed(0), cfg.eval)
    assert set(m) == {"elbo", "nll_iwae", "recon_mse", "kl", "active_units", "kl_dim0", "kl_dim1"}  # no bits/dim on points
    assert m["nll_iwae"] <= -m["elbo"] + 0.05  # the IWAE bound is at least as tight as the ELBO (Burda et al., Thm. 1)
    assert abs(m["kl"] - m["kl_dim0"] - m["kl_dim1"]) < 1e-5
    assert_seeded_sampling(method, nets)


def test_resume_round_trip_is_exact(tmp_path):
    assert_resume_is_exact(tiny_cfg("vae", epochs=3), blob(), tmp_path)


def test_pipeline(tmp_path):
    cfg, paths, info, metrics = run_pipeline(tmp_path, "vae")
    assert info["sampler"] == "prior"
    assert np.load(paths.samples / "samples.npy").shape == (400, 2)
    assert {"w1_exact", "elbo", "nll_iwae", "recon_mse", "kl_dim0"} <= set(metrics)
    assert all(np.isfinite(metrics[k]) for k in ("elbo", "nll_iwae", "recon_mse"))
    assert "nll_iwae" in (paths.report / "report.md").read_text()


@pytest.mark.parametrize("dotted, value, key", [
    ("vae.beta", 0, "vae.beta"),
    ("vae.decoder_var", "free", "vae.decoder_var"),
    ("vae.likelihood", "poisson", "vae.likelihood"),
    ("eval.n_importance", 0, "eval.n_importance"),
    ("eval.sampler", "ddim", "eval.sampler"),
    ("run.nproc_per_node", 3, "training.batch_size"),  # 1024 rows do not split in 3
    ("run.compile", True, "run.compile"),
])
def test_bad_params(dotted, value, key):
    with pytest.raises(ConfigError) as info:
        load(ROOT / "params.yaml", {"method": "vae", dotted: value})
    assert info.value.key == key and "\n" not in str(info.value)


def test_analysis_figures_reach_the_report_and_stale_ones_go(tmp_path, monkeypatch):
    """A method's ``analysis`` figures land in plots/analysis with their captions and appear in
    the report; a rerun without them leaves no stale figure behind."""
    from genlib.methods.vae import VAE
    from genlib.plots import curves

    def analysis(self, nets, test, generator, out, eval_params, meta, metrics):
        curves(out / "kl_layers.png", {"kl": (np.arange(3.0), np.ones(3))}, "KL per layer")
        return [("KL per layer", "kl_layers.png")]

    monkeypatch.setattr(VAE, "analysis", analysis, raising=False)
    cfg, paths, _, _ = run_pipeline(tmp_path, "vae")
    assert json.loads((paths.analysis / "index.json").read_text()) == [{"caption": "KL per layer", "file": "kl_layers.png"}]
    report = (paths.report / "report.md").read_text()
    assert "## KL per layer" in report and (paths.report / "kl_layers.png").is_file()
    monkeypatch.delattr(VAE, "analysis")
    evaluate_stage(cfg, paths)
    assert sorted(p.name for p in paths.analysis.iterdir()) == ["index.json"]
