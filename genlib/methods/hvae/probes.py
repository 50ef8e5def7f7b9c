"""How much each latent layer of a hierarchical VAE says about the data: its posterior means,
read by a linear probe (the decodability of the latents; Alain & Bengio, ICLR 2017 workshop,
"Understanding intermediate layers using linear classifier probes").

A probe is fitted on the training split's posterior means and scored on the test split's: with
labels, a multinomial logistic regression and its test accuracy; without, a ridge regression of
the input itself and its test R^2 (1: the layer holds the input linearly, 0: no better than the
mean). Both are deterministic fits of standardized features, so the numbers need no seed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

N_TRAIN = 5000  # training items a probe is fitted on (the first ones of the split)
N_TEST = 2000  # test items it is scored on
MAX_FEATURES = 1024  # image latents are average-pooled to at most this many features per layer
L2 = 1e-3  # weight decay of the logistic probe, and the ridge penalty per item, on standardized features
BATCH = 500  # items per top-down pass


@torch.no_grad()
def posterior_means(method, nets, x: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
    """Per latent layer (top first), the posterior means ``(N, ...)`` of ``x`` in the network's
    space, each layer's mean computed from the means above it (a layer without a posterior,
    ``top_simple`` or ``gen_prior``: its prior's mean given those)."""
    per_layer: list[list[torch.Tensor]] = [[] for _ in method.graph.latents]
    for chunk in x.split(BATCH):
        layers, _ = method.top_down(nets, chunk.shape[0], generator, method.bottom_up(nets, chunk), mean=True)
        for out, layer in zip(per_layer, layers):
            out.append(layer.z.float().cpu())  # with mean=True: q's mean, or p's without q
    return [torch.cat(out) for out in per_layer]


def model_space(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Items as the networks read them: uint8 images to ``x / 127.5 - 1`` (not dequantized), points as they are."""
    from genlib.data.image_transforms import to_model

    return to_model(x, generator, "none") if x.dtype == torch.uint8 else x


def features(z: torch.Tensor) -> torch.Tensor:
    """``(N, F)`` from a layer's means: flat, image latents average-pooled to ``MAX_FEATURES``."""
    if z.dim() == 4 and z[0].numel() > MAX_FEATURES:
        side = max(1, int((MAX_FEATURES / z.shape[1]) ** 0.5))
        z = F.adaptive_avg_pool2d(z, side)
    return z.flatten(1)


def _standardize(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu, sd = train.mean(0), train.std(0).clamp(min=1e-6)
    return (train - mu) / sd, (test - mu) / sd


def probe_accuracy(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor,
                   classes: int) -> float:
    """Test accuracy of a multinomial logistic regression fitted by L-BFGS from zero weights."""
    a, b = _standardize(train.double(), test.double())
    w = torch.zeros(a.shape[1] + 1, classes, dtype=torch.float64, requires_grad=True)
    ones = lambda x: torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], 1)  # noqa: E731  (a bias column)
    a1, b1 = ones(a), ones(b)
    opt = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(a1 @ w, train_labels) + L2 * w[:-1].pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return float(((b1 @ w.detach()).argmax(1) == test_labels).double().mean())


def probe_r2(train: torch.Tensor, train_x: torch.Tensor, test: torch.Tensor, test_x: torch.Tensor) -> float:
    """Test R^2 of a ridge regression of the input from the features: ``1 - SSE / SST``, summed
    over the input's dimensions, SST about the training mean."""
    a, b = _standardize(train.double(), test.double())
    y, y_test = train_x.flatten(1).double(), test_x.flatten(1).double()
    y_mean = y.mean(0)
    gram = a.T @ a + L2 * a.shape[0] * torch.eye(a.shape[1], dtype=a.dtype)
    w = torch.linalg.solve(gram, a.T @ (y - y_mean))
    sse = (y_test - y_mean - b @ w).pow(2).sum()
    sst = (y_test - y_mean).pow(2).sum()
    return float(1 - sse / sst)


def decodability(method, nets, train: torch.Tensor, test: torch.Tensor, train_labels: torch.Tensor | None,
                 test_labels: torch.Tensor | None, generator: torch.Generator) -> dict[str, float]:
    """On the first ``N_TRAIN`` training and ``N_TEST`` test items (as stored: uint8 images or points), ``decodability_layer{i}``: the probe's score on layer ``i`` (accuracy with labels, else
    R^2 of the input), and with labels ``decodability_chance``, the share of the commonest test label."""
    device = next(nets.parameters()).device
    train, test = (model_space(x, generator).to(device) for x in (train[:N_TRAIN], test[:N_TEST]))
    z_train, z_test = posterior_means(method, nets, train, generator), posterior_means(method, nets, test, generator)
    out = {}
    labelled = train_labels is not None and test_labels is not None
    if labelled:
        train_labels, test_labels = train_labels[:N_TRAIN].long(), test_labels[:N_TEST].long()
        classes = int(max(train_labels.max(), test_labels.max())) + 1
        out["decodability_chance"] = float(torch.bincount(test_labels, minlength=classes).max() / len(test_labels))
    for i, (a, b) in enumerate(zip(z_train, z_test)):
        a, b = features(a), features(b)
        if labelled:
            out[f"decodability_layer{i}"] = probe_accuracy(a, train_labels, b, test_labels, classes)
        else:
            out[f"decodability_layer{i}"] = probe_r2(a, train.float().cpu(), b, test.float().cpu())
    return out
