"""The evaluation during training: a light score of the weights on the held-out validation set.

Every ``training.eval_every`` steps (and at the last step) the loop calls a
:class:`ValidationEvaluation` on its state: ``training.eval_nsamples`` samples drawn with the
method's default sampler in ``training.eval_reverse_steps`` steps from the weights ``eval.ema``
names, compared with the validation set (``data.nval``, held out by ``prepare_data``): sliced W1,
MMD, the tail error and the worst mode-weight ratio on 2D points, as ``evaluate`` computes them
(:mod:`genlib.metrics.modes`: the quantiles of the distance to the nearest of the set's modes, and
the weights the nearest-mode rule gives the validation points); FID and KID in the evaluation
classifier's features on images (``fid_clf``, ``kid_clf``: :mod:`genlib.metrics.fidelity`, the
samples turned to uint8 as ``generate`` turns them); and, for a likelihood family, the validation
ELBO. Each metric is logged as ``val_<name>``, a step curve.

Its draws come from generators of its own, made afresh at each evaluation (the same noise every
time, so two steps differ by their weights alone), and the global generator's state (dropout's)
is restored after it: turning it on or off leaves the trained weights bit-identical. Under
several processes each one evaluates alike (the same weights, the same draws), so a stop that
follows from the metrics (early stopping) comes on every process at the same step.
"""
from __future__ import annotations

import torch

from genlib.device import autocast
from genlib.methods.spec import SampleOptions
from genlib.seeding import generator
from genlib.training.validation_metrics import IMAGE_METRICS, SAMPLE_METRICS, VALIDATION_PREFIX

N_PROJECTIONS = 200  # sliced W1's directions: its standard error is a few % of the value at 2,000 points
ELBO_BATCH = 4096  # validation points per batch of the ELBO


class ValidationEvaluation:
    """``__call__(state)``: ``{"val_<metric>": value}`` for the metrics ``training.eval_metrics`` names.
    ``val`` is the validation set as the network takes it (points; images transformed), ``modes``
    its set's modes (a (K, 2) tensor; None for a set without, whose tail error is measured from
    the validation points' mean); for ``fid_clf`` and ``kid_clf``, ``images`` are the validation
    images as stored (uint8) and ``classifier`` the evaluation classifier's file."""

    def __init__(self, method, val: torch.Tensor, cfg, device: torch.device, modes: torch.Tensor | None = None,
                 images: torch.Tensor | None = None, classifier=None) -> None:
        t = cfg.training
        self.method, self.val, self.device, self.modes = method, val.to(device), device, modes
        self.images, self.classifier = images, classifier
        self.metrics, self.n, self.steps = t.eval_metrics, t.eval_nsamples, t.eval_reverse_steps
        self.ema, self.seed, self.precision = cfg.eval.ema, cfg.seed, cfg.run.precision

    def __call__(self, state) -> dict[str, float]:
        net = state.net if self.ema is None else state.ema.models[self.ema]
        was_training = net.training
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            net.eval()
            try:
                out = self._scores(net)
            finally:
                net.train(was_training)
        return {f"{VALIDATION_PREFIX}{name}": value for name, value in out.items()}

    def _scores(self, net) -> dict[str, float]:
        from genlib.metrics.mmd import mmd_rbf
        from genlib.metrics.modes import assigned_weights, mode_weight_error, tail_error
        from genlib.metrics.wasserstein import sliced_wasserstein

        out: dict[str, float] = {}
        if any(m in IMAGE_METRICS for m in self.metrics):
            from genlib.data.image_transforms import to_uint8
            from genlib.metrics.fidelity import image_metrics

            images = to_uint8(torch.nan_to_num(self._sample(net), nan=-1.0, posinf=1.0, neginf=-1.0))
            scores = image_metrics(images, self.images, generator(self.seed, "train_eval/kid"), extractor="classifier",
                                   classifier_path=self.classifier, cuda=self.device.type == "cuda")
            out.update({name: scores[name] for name in IMAGE_METRICS})
        if any(m in SAMPLE_METRICS for m in self.metrics):
            samples, ref = self._sample(net), self.val.cpu()
            samples = samples[torch.isfinite(samples).all(1)]  # heavy tails may overflow; scored without them
            modes = self.modes
            scores = {"w1_sliced": lambda g: sliced_wasserstein(samples, ref, g, N_PROJECTIONS),
                      "mmd": lambda g: mmd_rbf(samples, ref, g),
                      "tail_error": lambda g: tail_error(samples, ref, modes)["tail_error"],
                      "mode_ratio_worst": lambda g: mode_weight_error(samples, modes, assigned_weights(ref, modes))["mode_ratio_worst"]}
            for name in (m for m in self.metrics if m in SAMPLE_METRICS):
                out[name] = scores[name](generator(self.seed, f"train_eval/{name}")) if samples.shape[0] >= 2 else float("nan")
        if "elbo" in self.metrics:
            g = generator(self.seed, "train_eval/elbo", self.device)
            out["elbo"] = float(torch.cat([self.method.elbo(net, x, g) for x in self.val.split(ELBO_BATCH)]).mean())
        return {name: out[name] for name in self.metrics}

    def _sample(self, net) -> torch.Tensor:
        """``training.eval_nsamples`` samples (float32, on the CPU), the same draws at every evaluation."""
        g = generator(self.seed, "train_eval/sample", self.device)
        with autocast(self.device, self.precision):
            samples = self.method.sample(net, (self.n, *self.val.shape[1:]), self.steps, g, SampleOptions())
        return samples.float().cpu()
