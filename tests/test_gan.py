"""The GAN: shapes, the R1 penalty, learning a blob, seeded sampling, exact resume, pipeline."""
import numpy as np
import pytest
import torch

from genlib.config import load
from genlib.errors import ConfigError
from genlib.methods.gan import GAN, GANParams

from family_helpers import (ROOT, Recorder, assert_resume_is_exact, assert_seeded_sampling, blob, run_pipeline,
                            tiny_cfg, trained)


@pytest.mark.parametrize("spectral", [False, True])
def test_shapes(spectral):
    gan = GAN(GANParams(latent_dim=5, spectral_norm=spectral))
    nets = gan.networks((2,))
    z = gan.latents(10, torch.Generator().manual_seed(0))
    assert z.shape == (10, 5) and nets["generator"](z).shape == (10, 2) and nets["discriminator"](blob(10)).shape == (10, 1)
    assert gan.sample(nets, (7, 2), 1, torch.Generator().manual_seed(0)).shape == (7, 2)


def test_r1_is_the_squared_input_gradient():
    # D(x) = w.x has grad_x D = w everywhere: R1 = gamma / 2 |w|^2.
    gan = GAN(GANParams(r1_gamma=0.4))
    lin = torch.nn.Linear(2, 1)
    nets = torch.nn.ModuleDict({"discriminator": lin})
    _, r1 = gan.discriminator_loss(nets, blob(16), blob(16, seed=1))
    assert torch.allclose(r1, 0.2 * lin.weight.pow(2).sum())


def test_learns_a_blob_and_logs_both_losses():
    # The adversarial losses need not fall; what must improve is the generated distribution.
    x, rec = blob(), Recorder()
    cfg = tiny_cfg("gan", 40)  # 320 steps
    method, state = trained(cfg, x, rec)
    assert {"loss", "loss_d", "loss_g", "r1", "grad_norm"} <= set(rec.rows[0][1])
    g = torch.Generator().manual_seed(0)
    untrained = method.networks((2,))
    before = method.sample(untrained, (2000, 2), 1, g)
    after = method.sample(state.net, (2000, 2), 1, g)
    miss = lambda s: float((s.mean(0) - x.mean(0)).norm())  # noqa: E731
    assert miss(before) > 1.3 and miss(after) < 0.3  # the blob's centre, 1.41 from the origin
    assert (after.std(0) > 2 * before.std(0)).all()  # spreading out towards the blob's 0.2


def test_seeded_sampling():
    method, state = trained(tiny_cfg("gan", 1), blob())
    assert_seeded_sampling(method, state.ema.models[0.99])


@pytest.mark.parametrize("extra", [{}, {"gan.spectral_norm": True, "gan.n_critic": 2}])
def test_resume_round_trip_is_exact(tmp_path, extra):
    assert_resume_is_exact(tiny_cfg("gan", 3, extra), blob(), tmp_path)


def test_pipeline(tmp_path):
    cfg, paths, info, metrics = run_pipeline(tmp_path, "gan")
    assert info["sampler"] == "generator"
    assert np.load(paths.samples / "samples.npy").shape == (400, 2)
    assert metrics["n_nonfinite"] == 0 and "elbo" not in metrics


@pytest.mark.parametrize("dotted, value, key", [
    ("gan.lr_d", 0, "gan.lr_d"),
    ("gan.n_critic", 0, "gan.n_critic"),
    ("gan.r1_gamma", -1, "gan.r1_gamma"),
    ("gan.betas", [0.5], "gan.betas"),
    ("gan.spectral_norm", "yes", "gan.spectral_norm"),
    ("run.nproc_per_node", 3, "training.batch_size"),  # 1024 rows do not split in 3
])
def test_bad_params(dotted, value, key):
    with pytest.raises(ConfigError) as info:
        load(ROOT / "params.yaml", {"method": "gan", dotted: value})
    assert info.value.key == key and "\n" not in str(info.value)
