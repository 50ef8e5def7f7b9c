"""The figures ``evaluate`` writes for a hierarchical VAE (``plots/analysis``), on 2D points or
images: the KL per layer, reconstructions, samples from the prior and traversals of the top layer."""
from __future__ import annotations

from pathlib import Path

import torch

from genlib import plots
from genlib.data.image_transforms import to_model, to_uint8

N_RECON = 200  # test points shown with their reconstructions
N_PRIOR = 3000  # points drawn from the prior
TRAVERSAL = torch.linspace(-3.0, 3.0, 25)  # top-prior standard deviations either side of its mean
N_PATHS = 5  # traversals per dimension: one at the top prior's mean, the rest from it


N_IMAGES = 12  # images per row of an image figure
IMAGE_TRAVERSAL = torch.linspace(-3.0, 3.0, 9)
MAX_CHANNELS = 8  # top-latent channels traversed on images


@torch.inference_mode()
def write_figures(method, nets, test: torch.Tensor, generator: torch.Generator, out: Path,
                  kl_layers: list[float]) -> list[tuple[str, str]]:
    """The figures, given the test set's KL per layer (``extra_metrics``' ``kl_layer{i}``)."""
    device = next(nets.parameters()).device
    images = test.dtype == torch.uint8
    test = (to_model(test, generator, "none") if images else test).to(device)  # images: x / 255 in [-1, 1]
    names = [b.name for b in method.graph.latents]
    labels = [f"{n}\n(layer {i})" for i, n in enumerate(names)]
    unit = "image" if images else "point"
    plots.bars(out / "kl_layers.png", labels, kl_layers, f"KL(q || p), nats per {unit}",
               "KL per latent layer, top first (test set)")
    figures = [("KL per latent layer (test set; near 0: an unused layer)", "kl_layers.png")]
    draw = _image_figures if images else _point_figures
    return figures + draw(method, nets, test, generator, out, names)


def _point_figures(method, nets, test, generator, out, names) -> list[tuple[str, str]]:
    data = test.cpu().numpy()
    figures = []
    x = test[:N_RECON]
    panels = []
    for k in range(1, len(names) + 1):
        title = "posterior at every layer" if k == len(names) else f"posterior at {', '.join(names[:k])}; prior means below"
        panels.append((title, method.reconstruct(nets, x, generator, k).cpu().numpy(), x.cpu().numpy()))
    plots.point_panels(out / "reconstructions.png", data, panels)
    figures.append(("Reconstructions: posterior means from the top down to each layer, prior means below", "reconstructions.png"))

    _, px = method.top_down(nets, N_PRIOR, generator)
    plots.point_panels(out / "prior_samples.png", data, [
        ("x ~ p(x|z), z from the prior", px.sample(generator).cpu().numpy(), None),
        ("mean of p(x|z), z from the prior", px.mu.cpu().numpy(), None),
    ])
    figures.append(("Samples from the prior, with and without the output noise", "prior_samples.png"))

    plots.path_panels(out / "traversals.png", data, traversals(method, nets, generator), "top-prior std from its mean")
    figures.append((f"Latent traversals of the top layer {names[0]} (lower layers at their prior means)", "traversals.png"))
    return figures


def _image_figures(method, nets, test, generator, out, names) -> list[tuple[str, str]]:
    x = test[:N_IMAGES]
    rows = [("data", x)]
    for k in range(1, len(names) + 1):
        rows.append((f"q to {names[k - 1]}", method.reconstruct(nets, x, generator, k)))
    plots.image_rows(out / "reconstructions.png", [(label, _pixels(r)) for label, r in rows])
    _, px = method.top_down(nets, 2 * N_IMAGES, generator)
    plots.image_rows(out / "prior_samples.png", [
        ("x ~ p(x|z)", _pixels(px.sample(generator)[:N_IMAGES])), ("mean", _pixels(px.mu[N_IMAGES:])),
    ])
    top = method.graph.latents[0]
    prior, _ = nets[top.name].prior(None, len(IMAGE_TRAVERSAL))
    std = (0.5 * prior.logvar).exp()
    t = IMAGE_TRAVERSAL.to(std.device).view(-1, 1, 1)
    rows = []
    for c in range(min(top.latent, MAX_CHANNELS)):
        z = prior.mu.clone()
        z[:, c] = prior.mu[:, c] + t * std[:, c]  # channel c moved at every position together
        _, px = method.top_down(nets, z.shape[0], generator, mean=True, fixed={0: z})
        rows.append((f"{top.name}[{c}]", _pixels(px.mu)))
    plots.image_rows(out / "traversals.png", rows)
    return [
        ("Reconstructions: held-out images, then the posterior means from the top down to each layer (prior means below)", "reconstructions.png"),
        ("Samples from the prior, with and without the output noise", "prior_samples.png"),
        (f"Latent traversals of the top layer {names[0]}: each channel from -3 to 3 prior std (lower layers at their prior means)", "traversals.png"),
    ]


def _pixels(x: torch.Tensor):
    return to_uint8(x.float().cpu()).numpy()


def traversals(method, nets, generator: torch.Generator) -> list[tuple[str, object, object]]:
    """Per top-latent dimension ``d``: decoded means along ``z_d = mu_d + t sigma_d``, ``t`` in
    [-3, 3], the other top dimensions at the prior's mean (first path) or drawn from it, and every
    lower layer at its prior mean given the layers above."""
    top = method.graph.latents[0]
    prior, _ = nets[top.name].prior(None, N_PATHS)
    base = prior.sample(generator)
    base[0] = prior.mu[0]
    std = (0.5 * prior.logvar[0]).exp()
    t = TRAVERSAL.to(base.device)
    panels = []
    for d in range(top.latent):
        z = base.repeat_interleave(len(t), dim=0)  # (N_PATHS * T, latent)
        z[:, d] = prior.mu[0, d] + t.repeat(N_PATHS) * std[d]
        _, px = method.top_down(nets, z.shape[0], generator, mean=True, fixed={0: z})
        curves = px.mu.view(N_PATHS, len(t), -1).cpu().numpy()
        panels.append((f"{top.name}[{d}]", curves, t.cpu().numpy()))
    return panels
