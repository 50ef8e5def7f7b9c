"""The figures ``evaluate`` writes for a hierarchical VAE (``plots/analysis``), on 2D points or
images: the KL and the decodability per layer, reconstructions, samples from the prior,
traversals of every layer, white-noise receptive fields and the most exciting test inputs of the
latent dimensions (:mod:`genlib.methods.hvae.receptive`)."""
from __future__ import annotations

from pathlib import Path

import torch

from genlib import plots
from genlib.data.image_transforms import to_model, to_uint8
from genlib.methods.hvae.probes import N_TEST, posterior_means
from genlib.methods.hvae.receptive import most_exciting, receptive_fields, units

N_RECON = 200  # test points shown with their reconstructions
N_PRIOR = 3000  # points drawn from the prior
TRAVERSAL = torch.linspace(-3.0, 3.0, 25)  # prior standard deviations either side of its mean
N_PATHS = 5  # traversals per dimension: one at the layer's prior mean, the rest drawn from it
N_EXCITING = 50  # test points shown per latent dimension as its most exciting inputs

N_IMAGES = 12  # images per row of an image figure
IMAGE_TRAVERSAL = torch.linspace(-3.0, 3.0, 9)
MAX_CHANNELS = 8  # latent channels traversed per layer on images
N_EXCITING_IMAGES = 8


@torch.inference_mode()
def write_figures(method, nets, test: torch.Tensor, generator: torch.Generator, out: Path,
                  metrics: dict, chosen: set[str]) -> list[tuple[str, str]]:
    """The figures, given the metrics of the test set (``kl_layer{i}`` from ``extra_metrics``,
    ``decodability_layer{i}`` from ``representation_metrics``), the traversals, receptive fields
    and most exciting inputs where ``chosen`` (``eval.analysis``) names them."""
    device = next(nets.parameters()).device
    images = test.dtype == torch.uint8
    test = (to_model(test, generator, "none") if images else test).to(device)  # images: x / 255 in [-1, 1]
    names = [b.name for b in method.graph.latents]
    labels = [f"{n}\n(layer {i})" for i, n in enumerate(names)]
    unit = "image" if images else "point"
    plots.bars(out / "kl_layers.png", labels, [metrics[f"kl_layer{i}"] for i in range(len(names))],
               f"KL(q || p), nats per {unit}", "KL per latent layer, top first (test set)")
    figures = [("KL per latent layer (test set; near 0: an unused layer)", "kl_layers.png")]
    if "decodability_layer0" in metrics:
        labelled = "decodability_chance" in metrics
        what = "test accuracy of the labels" if labelled else "test R^2 of the input"
        chance = f"; chance {metrics['decodability_chance']:.3g}" if labelled else ""
        plots.bars(out / "decodability.png", labels, [metrics[f"decodability_layer{i}"] for i in range(len(names))],
                   what, f"Linear probe of each layer's posterior means{chance}")
        figures.append((f"Decodability: {what} by a linear probe of each layer's posterior means (fitted on the training set){chance}",
                        "decodability.png"))
    draw = _image_figures if images else _point_figures
    figures += draw(method, nets, test, generator, out, names, "traversals" in chosen)
    return figures + _receptive_figures(method, nets, test, generator, out, names, images, chosen)


def _point_figures(method, nets, test, generator, out, names, traverse: bool) -> list[tuple[str, str]]:
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

    for i, name in enumerate(names if traverse else ()):
        file = f"traversals_layer{i}.png"
        plots.path_panels(out / file, data, traversals(method, nets, generator, i), "prior std from its mean")
        figures.append((f"Latent traversals of layer {i} ({name}): each dimension from -3 to 3 prior std, the layers above "
                        "at their prior means, the others of its layer at its prior mean (first path) or drawn from it, "
                        "the layers below at their prior means", file))
    return figures


def _image_figures(method, nets, test, generator, out, names, traverse: bool) -> list[tuple[str, str]]:
    x = test[:N_IMAGES]
    rows = [("data", x)]
    for k in range(1, len(names) + 1):
        rows.append((f"q to {names[k - 1]}", method.reconstruct(nets, x, generator, k)))
    plots.image_rows(out / "reconstructions.png", [(label, _pixels(r)) for label, r in rows])
    _, px = method.top_down(nets, 2 * N_IMAGES, generator)
    plots.image_rows(out / "prior_samples.png", [
        ("x ~ p(x|z)", _pixels(px.sample(generator)[:N_IMAGES])), ("mean", _pixels(px.mu[N_IMAGES:])),
    ])
    figures = [
        ("Reconstructions: held-out images, then the posterior means from the top down to each layer (prior means below)", "reconstructions.png"),
        ("Samples from the prior, with and without the output noise", "prior_samples.png"),
    ]
    t = IMAGE_TRAVERSAL.to(test.device).view(-1, 1, 1)
    layers, _ = method.top_down(nets, len(IMAGE_TRAVERSAL), generator, mean=True)
    for i, name in enumerate(names if traverse else ()):
        prior = layers[i].p  # given the layers above at their prior means
        std = (0.5 * prior.logvar).exp()
        rows = []
        for c in range(min(prior.mu.shape[1], MAX_CHANNELS)):
            z = prior.mu.clone()
            z[:, c] = prior.mu[:, c] + t * std[:, c]  # channel c moved at every position together
            _, px = method.top_down(nets, z.shape[0], generator, mean=True, fixed={i: z})
            rows.append((f"{name}[{c}]", _pixels(px.mu)))
        file = f"traversals_layer{i}.png"
        plots.image_rows(out / file, rows)
        figures.append((f"Latent traversals of layer {i} ({name}): each channel from -3 to 3 prior std at every position, "
                        "the other layers at their prior means", file))
    return figures


def _receptive_figures(method, nets, test, generator, out, names, images, chosen) -> list[tuple[str, str]]:
    """White-noise receptive fields and the most exciting test inputs of each layer's first
    dimensions (image channels at the centre of their grid), as ``chosen`` names them."""
    figures = []
    data = test.cpu()
    if "receptive_fields" in chosen:
        fields = receptive_fields(method, nets, test, generator)
        if images:
            rows = []
            for name, field in zip(names, fields):
                peak = field.flatten(1).abs().amax(1).clamp(min=1e-12).view(-1, 1, 1, 1)
                rows.append((f"{name}: channels 0-{len(field) - 1}", _pixels(field / peak)))  # grey: 0, white: +, black: -
            plots.image_rows(out / "receptive_fields.png", rows)
        else:
            dims = [f"x[{j}]" for j in range(data.shape[1])]
            plots.heatmaps(out / "receptive_fields.png", [
                (f"layer {i} ({name})", field.numpy(), [f"{name}[{k}]" for k in range(len(field))], dims)
                for i, (name, field) in enumerate(zip(names, fields))], "correlation with the input")
        figures.append(("White-noise receptive fields: the correlation of each latent dimension's posterior mean with the "
                        "input over white-noise inputs (images: per pixel, each channel read at the centre of its grid; "
                        "grey 0, white positive)", "receptive_fields.png"))
    if "most_exciting" in chosen:
        data = data[:N_TEST]  # the decodability probe's test items: one top-down pass of each
        z_test = posterior_means(method, nets, test[:N_TEST], generator)
        picked = [(f"{name}[{k}]", idx) for name, z in zip(names, z_test)
                  for (k, _), idx in zip(units(z), most_exciting(z, N_EXCITING_IMAGES if images else N_EXCITING))]
        if images:
            plots.image_rows(out / "most_exciting.png", [(label, _pixels(data[idx])) for label, idx in picked])
        else:
            plots.point_panels(out / "most_exciting.png", data.numpy(), [(label, data[idx].numpy(), None) for label, idx in picked],
                               label=f"the {N_EXCITING} largest posterior means")
        figures.append((f"Most exciting inputs: of the first {N_TEST} test inputs, those with the largest posterior mean of each latent dimension",
                        "most_exciting.png"))
    return figures


def _pixels(x: torch.Tensor):
    return to_uint8(x.float().cpu()).numpy()


def traversals(method, nets, generator: torch.Generator, layer: int = 0) -> list[tuple[str, object, object]]:
    """Per dimension ``d`` of latent layer ``layer``: decoded means along ``z_d = mu_d + t sigma_d``,
    ``t`` in [-3, 3], of that layer's prior given the layers above at their prior means; its other
    dimensions at the prior's mean (first path) or drawn from it, and every lower layer at its
    prior mean given the layers above."""
    layers, _ = method.top_down(nets, N_PATHS, generator, mean=True)
    prior = layers[layer].p
    base = prior.sample(generator)
    base[0] = prior.mu[0]
    std = (0.5 * prior.logvar[0]).exp()
    t = TRAVERSAL.to(base.device)
    name = method.graph.latents[layer].name
    panels = []
    for d in range(base.shape[1]):
        z = base.repeat_interleave(len(t), dim=0)  # (N_PATHS * T, latent)
        z[:, d] = prior.mu[0, d] + t.repeat(N_PATHS) * std[d]
        _, px = method.top_down(nets, z.shape[0], generator, mean=True, fixed={layer: z})
        curves = px.mu.view(N_PATHS, len(t), -1).cpu().numpy()
        panels.append((f"{name}[{d}]", curves, t.cpu().numpy()))
    return panels
