"""The VAE and the GAN on images: conv shapes, learning tiny images, seeded sampling, exact resume,
the config checks, and a tiny MNIST run through the pipeline steps with bits per dimension."""
import dataclasses

import numpy as np
import pytest
import torch

from genlib.pipeline.evaluate import evaluate_stage
from genlib.pipeline.generate import generate_stage
from genlib.pipeline.paths import Paths
from genlib.pipeline.prepare import prepare_data
from genlib.pipeline.train import train_stage
from genlib.pipeline.train_teacher import train_teacher_stage
from genlib.config import load
from genlib.errors import ConfigError
from genlib.methods.gan import GAN, GANParams
from genlib.methods.vae import VAE, VAEParams
from genlib.pipeline.report import report_stage

from family_helpers import ROOT, Recorder, assert_resume_is_exact, assert_seeded_sampling, trained
from test_images_data import write_fake_mnist
from test_images_pipeline import MNIST, TINY_IMAGES

SHAPE = (1, 16, 16)


def squares(n=256, seed=0):
    """Dark 16x16 images, each with a bright 6x6 square at a random place, in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = -torch.ones(n, *SHAPE)
    corners = torch.randint(0, 11, (n, 2), generator=g)
    for img, (i, j) in zip(x, corners.tolist()):
        img[:, i:i + 6, j:j + 6] = 0.9
    return x


def image_cfg(method, epochs, overrides=None, batch_size=32):
    """The unit tests' config on image data (the networks get images straight, no files read)."""
    cfg = load(ROOT / "params.yaml", {**TINY_IMAGES, "data.root": "unused", "method": method, **(overrides or {})})
    training = dataclasses.replace(cfg.training, epochs=epochs, batch_size=batch_size, ema_rates=(0.9, 0.99))
    return dataclasses.replace(cfg, training=training, run=dataclasses.replace(cfg.run, log_every=5))


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 16, 16)])
@pytest.mark.parametrize("lik", ["gaussian", "bernoulli", "discretized_logistic"])
def test_conv_vae_shapes(shape, lik):
    vae = VAE(VAEParams(latent_dim=5, likelihood=lik, channels=8))
    nets = vae.networks(shape)
    x = torch.rand(6, *shape) * 2 - 1
    per_dim = 1 if lik == "bernoulli" else 2
    assert nets["decoder"](torch.zeros(6, 5)).shape == (6, per_dim * shape[0], *shape[1:])
    assert nets["decoder"](torch.zeros(3, 6, 5)).shape == (3, 6, per_dim * shape[0], *shape[1:])  # importance samples
    recon, kl = vae.terms(nets, x, torch.Generator().manual_seed(0))
    assert recon.shape == (6,) and kl.shape == (6, 5)
    assert vae.sample(nets, (4, *shape), 1, torch.Generator().manual_seed(0)).shape == (4, *shape)
    assert vae.iwae_log_likelihood(nets, x, 3, torch.Generator().manual_seed(0)).shape == (6,)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("spectral", [False, True])
def test_dcgan_shapes(shape, spectral):
    gan = GAN(GANParams(latent_dim=7, g_channels=8, d_channels=8, spectral_norm=spectral))
    nets = gan.networks(shape)
    fake = nets["generator"](gan.latents(5, torch.Generator().manual_seed(0)))
    assert fake.shape == (5, *shape) and fake.abs().max() <= 1  # tanh output
    assert nets["discriminator"](fake).shape == (5, 1)
    _, r1 = gan.discriminator_loss(nets, torch.rand(5, *shape) * 2 - 1, fake.detach())
    assert r1 > 0


@pytest.mark.parametrize("make, key", [
    (lambda: VAE(VAEParams(levels=2)).networks((1, 30, 30)), "vae.levels"),
    (lambda: GAN(GANParams(levels=3)).networks((3, 28, 28)), "gan.levels"),
])
def test_image_sizes_the_nets_cannot_halve_are_refused(make, key):
    with pytest.raises(ConfigError) as info:
        make()
    assert info.value.key == key and "\n" not in str(info.value)


def test_conv_vae_loss_decreases_on_tiny_images():
    rec = Recorder()
    cfg = image_cfg("vae", 20, {"vae.latent_dim": 4, "vae.channels": 8, "vae.likelihood": "discretized_logistic"})
    trained(cfg, squares(), rec)  # 160 steps
    losses = [v["loss"] for _, v in rec.rows]
    assert sum(losses[-4:]) / 4 < 0.7 * sum(losses[:4]) / 4  # nats per image


def test_dcgan_learns_the_dark_background():
    # The adversarial losses need not fall; the generated images must come to look like the data:
    # an untrained tanh generator gives grey (about 0), the squares are mostly -1 (mean -0.73).
    cfg = image_cfg("gan", 20, {"gan.latent_dim": 8, "gan.g_channels": 8, "gan.d_channels": 8, "gan.lr_g": 5e-4,
                                "gan.lr_d": 5e-4})
    method, state = trained(cfg, squares())  # 160 steps
    g = torch.Generator().manual_seed(0)
    before = method.sample(method.networks(SHAPE), (256, *SHAPE), 1, g)
    after = method.sample(state.net, (256, *SHAPE), 1, g)
    assert abs(float(before.mean())) < 0.1 and float(after.mean()) < -0.4
    assert_seeded_sampling(method, state.ema.models[0.99], SHAPE)


def test_conv_vae_metrics_and_seeded_sampling():
    cfg = image_cfg("vae", 2, {"vae.latent_dim": 4, "vae.channels": 8, "vae.likelihood": "discretized_logistic",
                               "eval.n_importance": 8})
    method, state = trained(cfg, squares())
    nets = state.ema.models[0.99]
    m = method.extra_metrics(nets, squares(64, seed=1), torch.Generator().manual_seed(0), cfg.eval)
    assert {"elbo", "nll_iwae", "bits_per_dim", "recon_mse", "kl", "active_units", "kl_dim3"} <= set(m)
    assert m["nll_iwae"] <= -m["elbo"] + 1.0
    assert m["bits_per_dim"] == pytest.approx(m["nll_iwae"] / (256 * np.log(2)))  # a mass: no change of variables
    assert_seeded_sampling(method, nets, SHAPE)


@pytest.mark.parametrize("method, extra", [
    ("vae", {"vae.likelihood": "discretized_logistic", "vae.channels": 8}),
    ("gan", {"gan.g_channels": 8, "gan.d_channels": 8}),
    ("gan", {"gan.g_channels": 8, "gan.d_channels": 8, "gan.spectral_norm": True, "gan.n_critic": 2}),
    ("discr_flow", {"discr_flow.d_channels": 8, "discr_flow.steps": 3}),
])
def test_resume_round_trip_is_exact(tmp_path, method, extra):
    assert_resume_is_exact(image_cfg(method, 3, extra, batch_size=16), squares(128), tmp_path)


@pytest.mark.parametrize("dotted, value, key", [
    ("vae.likelihood", "bernoulli", "vae.likelihood"),  # 2D points are not in [0, 1]
    ("vae.likelihood", "discretized_logistic", "vae.likelihood"),
    ("vae.channels", 0, "vae.channels"),
    ("gan.levels", 0, "gan.levels"),
])
def test_bad_params_on_points(dotted, value, key):
    with pytest.raises(ConfigError) as info:
        load(ROOT / "params.yaml", {"method": dotted.split(".")[0], dotted: value})
    assert info.value.key == key and "\n" not in str(info.value)


@pytest.mark.parametrize("method", ["vae", "gan", "discr_flow"])
def test_an_image_size_the_nets_cannot_halve_is_refused_at_the_door(tmp_path, method):
    with pytest.raises(ConfigError) as info:
        load(ROOT / "params.yaml", {**TINY_IMAGES, "data.root": str(tmp_path), "method": method, "data.image_size": 18,
                                    f"{method}.levels": 2})
    assert info.value.key == f"{method}.levels" and "one of 1" in str(info.value)


def test_discretized_likelihood_refuses_gaussian_dequantization(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(ROOT / "params.yaml", {**TINY_IMAGES, "data.root": str(tmp_path), "method": "vae",
                                    "vae.likelihood": "discretized_logistic", "data.dequantization": "gaussian"})
    assert info.value.key == "data.dequantization"


@pytest.fixture
def mnist_root(tmp_path):
    """Real MNIST when the shared copy is there, else fake idx files of the same shapes."""
    if MNIST.is_dir():
        return MNIST
    write_fake_mnist(tmp_path / "fake_mnist", 600, 300)
    return tmp_path / "fake_mnist"


@pytest.mark.parametrize("method, extra", [
    ("vae", {"vae.likelihood": "discretized_logistic"}),
    ("vae", {"vae.likelihood": "gaussian"}),
    ("vae", {"vae.likelihood": "bernoulli"}),
    ("gan", {}),
    ("discr_flow", {"discr_flow.steps": 4}),
    ("scoregan", {"scoregan.teacher.training.epochs": 1}),  # the teacher: an edm U-Net
    ("scoregan", {"scoregan.teacher.method": "ddpm", "scoregan.sigma_min": 0.2}),  # T = 10: sigma >= 0.168
])
def test_tiny_mnist_run(tmp_path, mnist_root, method, extra):
    nets = {"vae.latent_dim": 4, "vae.channels": 8, "gan.latent_dim": 8, "gan.g_channels": 8, "gan.d_channels": 8,
            "discr_flow.d_channels": 8, "scoregan.latent_dim": 8, "scoregan.g_channels": 8, "scoregan.n_score": 1}
    cfg = load(ROOT / "params.yaml", {**TINY_IMAGES, **nets, "data.root": str(mnist_root), "method": method,
                                      "eval.n_importance": 4, **extra})
    paths = Paths(tmp_path / "run")
    prepare_data(cfg, paths)
    train_teacher_stage(cfg, paths)  # ScoreGAN's teacher; a marker for the others
    train_stage(cfg, paths)
    info = generate_stage(cfg, paths)
    samples = np.load(paths.samples / "samples.npy")
    assert samples.shape == (96, 1, 16, 16) and samples.dtype == np.uint8 and info["n_nonfinite"] == 0
    assert (paths.samples_plot).is_file()
    metrics = evaluate_stage(cfg, paths)
    assert np.isfinite(metrics["fid_clf"])
    if method in ("gan", "discr_flow", "scoregan"):
        assert "elbo" not in metrics
        return
    assert all(np.isfinite(metrics[k]) for k in ("elbo", "nll_iwae", "recon_mse", "kl", "active_units"))
    if extra["vae.likelihood"] == "bernoulli":
        assert "bits_per_dim" not in metrics  # no distribution over the 8-bit levels
    else:
        assert 0 < metrics["bits_per_dim"] < 16
        report_stage(cfg, paths)
        assert "bits_per_dim" in (paths.report / "report.md").read_text()


@pytest.mark.parametrize("lik", ["gaussian", "discretized_logistic"])
def test_bits_per_dim_of_a_known_vae(lik):
    """Zero weights: q(z|x) is the prior, so every importance weight is p(x|z), and the decoder
    outputs 0 whatever z: N(0, 1) per pixel, or the logistic of location 0 and scale 1 over the
    bins. The VAE's bits per dimension must equal the hand computation from those."""
    from genlib.config import EvalParams

    vae = VAE(VAEParams(latent_dim=3, channels=4, likelihood=lik))
    nets = vae.networks(SHAPE)
    for p in nets.parameters():
        torch.nn.init.zeros_(p)
    x = squares(32)  # levels 0 (the open first bin) and 243
    m = vae.extra_metrics(nets, x, torch.Generator().manual_seed(0), EvalParams(n_importance=4))
    dims = x[0].numel()
    if lik == "gaussian":
        nll = (0.5 * x.pow(2) + 0.5 * np.log(2 * np.pi)).flatten(1).sum(1).mean().item()
        expected = (nll + dims * np.log(128)) / (dims * np.log(2))
    else:
        centres = (2 * torch.floor((x.double() + 1) * 128) + 1) / 256 - 1
        mass = torch.sigmoid(centres + 1 / 256) - torch.sigmoid(centres - 1 / 256)
        mass = torch.where(centres < -1 + 2 / 256, torch.sigmoid(centres + 1 / 256), mass)  # the open first bin
        expected = -mass.log().flatten(1).sum(1).mean().item() / (dims * np.log(2))
    assert m["kl"] == 0 and m["bits_per_dim"] == pytest.approx(expected, rel=1e-5)
