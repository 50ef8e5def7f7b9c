"""The cosine schedule's constants and its noise level in EDM's terms, without torch, so that the
specs can check noise ranges at the door (:mod:`genlib.methods.schedules` makes the tensors)."""
from __future__ import annotations

import math

# Improved DDPM (Nichol & Dhariwal, 2021), Eq. 17: offset s and the cap on beta_t.
COSINE_OFFSET = 0.008
MAX_BETA = 0.999
# Where the curve stops, as a fraction of its full length. The full curve ends at alpha_bar = 0,
# which makes the last step singular (beta_T capped at 0.999, gamma_T ~ 0.03): with T = 100 the
# network's error at t = T is then amplified ~30x and samples run away. Stopping at 0.99, as the
# DLPM authors' code effectively does, leaves alpha_bar_T = 2.4e-4 and a tame last step.
COSINE_END = 0.99


def theta0(offset: float = COSINE_OFFSET) -> float:
    """The curve's angle at ``t = 0``: ``alpha_bar(t) = cos^2(theta(t)) / cos^2(theta0)``."""
    return offset / (1 + offset) * math.pi / 2


def ve_sigma(t: float, offset: float = COSINE_OFFSET, end: float = COSINE_END) -> float:
    """``sigma(t) = sqrt((1 - alpha_bar(t)) / alpha_bar(t))``: the noise level of
    ``x_t / sqrt(alpha_bar(t)) = x_0 + sigma(t) eps``, the VP process written as EDM's
    ``x_0 + sigma eps`` (Karras et al., NeurIPS 2022, Table 1, "VP", with ``s(t) = 1 / sqrt(1 + sigma^2)``).

    With ``theta = (end t + s) / (1 + s) pi / 2``: ``sigma^2 = sin(theta - theta0) sin(theta + theta0) / cos^2(theta)``,
    free of cancellation near ``t = 0``. The inverse is :meth:`genlib.methods.ddpm.DDPM.time_of_sigma`.
    """
    th0 = theta0(offset)
    th = (end * t + offset) / (1 + offset) * math.pi / 2
    return math.sqrt(math.sin(th - th0) * math.sin(th + th0)) / math.cos(th)
