"""Noise-free 2D shapes drawn procedurally (no image files), all from an explicit generator.

Every function returns an ``(n, 2)`` float32 tensor on the generator's device, roughly inside
``[-4, 4]^2``; the datasets in :mod:`genlib.data.toy2d` add Gaussian noise on top.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

# Swiss roll: t ~ U(1.5 pi, 4.5 pi), the point is (t cos t, t sin t), as in the usual 3D roll's (x, z).
ROLL_T_MIN = 1.5 * math.pi
ROLL_T_MAX = 4.5 * math.pi

# Rose r = R cos(k theta); an odd k draws k petals and closes over theta in [0, pi).
ROSE_PETALS = 5
ROSE_RADIUS = 3.0

# Fractal tree: a binary tree of straight branches, scaled so its bounding box fits this half-width.
TREE_DEPTH = 6
TREE_ANGLE = math.radians(28.0)
TREE_RATIO = 0.7
TREE_HALF_WIDTH = 3.5

# Olympic rings: top row blue, black, red; bottom row yellow, green, offset by half a spacing.
RING_RADIUS = 1.1
RING_CENTRES = (
    (-2.2 * RING_RADIUS, 0.5 * RING_RADIUS),
    (0.0, 0.5 * RING_RADIUS),
    (2.2 * RING_RADIUS, 0.5 * RING_RADIUS),
    (-1.1 * RING_RADIUS, -0.5 * RING_RADIUS),
    (1.1 * RING_RADIUS, -0.5 * RING_RADIUS),
)

# Checkerboard: BOARD x BOARD squares covering [-BOARD_HALF_WIDTH, BOARD_HALF_WIDTH]^2.
BOARD = 4
BOARD_HALF_WIDTH = 4.0


def _rand(n: int, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """n uniform draws on [0, 1) on the generator's device."""
    return torch.rand(n, generator=generator, device=generator.device, dtype=dtype)


def _polar(radius: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Stack (r cos a, r sin a) into an (n, 2) tensor."""
    return torch.stack((radius * torch.cos(angle), radius * torch.sin(angle)), dim=1)


def _roll_raw_moments() -> tuple[float, float, float, float]:
    """Exact mean and std of (t cos t, t sin t) for t ~ U(ROLL_T_MIN, ROLL_T_MAX)."""
    a, b = ROLL_T_MIN, ROLL_T_MAX
    length = b - a

    def avg(antiderivative) -> float:
        """Mean over [a, b] of the function with this antiderivative."""
        return (antiderivative(b) - antiderivative(a)) / length

    mean_x = avg(lambda t: t * math.sin(t) + math.cos(t))
    mean_z = avg(lambda t: -t * math.cos(t) + math.sin(t))
    # t^2 cos^2 t = t^2 / 2 + t^2 cos(2t) / 2, and t^2 sin^2 t = t^2 / 2 - t^2 cos(2t) / 2.
    def half_sq(t: float) -> float:
        """Antiderivative of t^2 / 2."""
        return t**3 / 6

    def half_cos(t: float) -> float:
        """Antiderivative of t^2 cos(2t) / 2."""
        return t**2 * math.sin(2 * t) / 4 + t * math.cos(2 * t) / 4 - math.sin(2 * t) / 8

    sq_x = avg(lambda t: half_sq(t) + half_cos(t))
    sq_z = avg(lambda t: half_sq(t) - half_cos(t))
    return mean_x, mean_z, math.sqrt(sq_x - mean_x**2), math.sqrt(sq_z - mean_z**2)


ROLL_MEAN_X, ROLL_MEAN_Z, ROLL_STD_X, ROLL_STD_Z = _roll_raw_moments()


def swiss_roll(n: int, generator: torch.Generator) -> torch.Tensor:
    """2D swiss roll standardised (with its exact moments) to mean 0 and std 1 per coordinate."""
    t = ROLL_T_MIN + (ROLL_T_MAX - ROLL_T_MIN) * _rand(n, generator, torch.float64)
    x = (t * torch.cos(t) - ROLL_MEAN_X) / ROLL_STD_X
    z = (t * torch.sin(t) - ROLL_MEAN_Z) / ROLL_STD_Z
    return torch.stack((x, z), dim=1).float()


def rose(n: int, generator: torch.Generator) -> torch.Tensor:
    """Points on the rose r = ROSE_RADIUS cos(k theta), theta uniform over one period of the curve."""
    period = math.pi if ROSE_PETALS % 2 == 1 else 2 * math.pi
    theta = period * _rand(n, generator)
    return _polar(ROSE_RADIUS * torch.cos(ROSE_PETALS * theta), theta)


@lru_cache(maxsize=None)
def tree_segments() -> tuple[torch.Tensor, torch.Tensor]:
    """Start and end points (float64, CPU) of the fractal tree's 2**TREE_DEPTH - 1 branches."""
    starts, ends = [], []
    tips = torch.zeros(1, 2, dtype=torch.float64)
    headings = torch.tensor([math.pi / 2], dtype=torch.float64)
    length = 1.0
    for _ in range(TREE_DEPTH):
        new_tips = tips + length * _polar(torch.ones_like(headings), headings)
        starts.append(tips)
        ends.append(new_tips)
        tips = new_tips.repeat_interleave(2, dim=0)
        turns = torch.tensor([TREE_ANGLE, -TREE_ANGLE], dtype=torch.float64)
        headings = (headings.unsqueeze(1) + turns).flatten()
        length *= TREE_RATIO
    start, end = torch.cat(starts), torch.cat(ends)
    corners = torch.cat((start, end))
    low, high = corners.min(dim=0).values, corners.max(dim=0).values
    centre, scale = (low + high) / 2, TREE_HALF_WIDTH / ((high - low).max() / 2)
    return (start - centre) * scale, (end - centre) * scale


def fractal_tree(n: int, generator: torch.Generator) -> torch.Tensor:
    """Points uniform along the total branch length of the fractal tree."""
    start, end = (s.to(generator.device) for s in tree_segments())
    lengths = (end - start).norm(dim=1)
    cumulative = torch.cumsum(lengths, dim=0)
    position = cumulative[-1] * _rand(n, generator, torch.float64)
    branch = torch.searchsorted(cumulative, position, right=True).clamp_max(len(lengths) - 1)
    offset = position - (cumulative[branch] - lengths[branch])
    fraction = (offset / lengths[branch]).clamp(0.0, 1.0).unsqueeze(1)
    return (start[branch] + fraction * (end[branch] - start[branch])).float()


def ring_centres(device: torch.device | str = "cpu") -> torch.Tensor:
    """(5, 2) centres of the Olympic rings."""
    return torch.tensor(RING_CENTRES, dtype=torch.float32, device=device)


def olympic_rings(n: int, generator: torch.Generator) -> torch.Tensor:
    """Points on the five Olympic circles, ring picked uniformly, angle uniform."""
    ring = torch.randint(len(RING_CENTRES), (n,), generator=generator, device=generator.device)
    angle = 2 * math.pi * _rand(n, generator)
    return ring_centres(generator.device)[ring] + _polar(torch.full_like(angle, RING_RADIUS), angle)


def is_dark_square(points: torch.Tensor) -> torch.Tensor:
    """Whether each point lies in a dark square (the corner square at (-4, -4) is dark)."""
    side = 2 * BOARD_HALF_WIDTH / BOARD
    cell = torch.floor((points + BOARD_HALF_WIDTH) / side).long()
    inside = ((cell >= 0) & (cell < BOARD)).all(dim=1)
    return inside & (cell.sum(dim=1) % 2 == 0)


def checkerboard(n: int, generator: torch.Generator) -> torch.Tensor:
    """Points uniform on the dark squares of a BOARD x BOARD board."""
    side = 2 * BOARD_HALF_WIDTH / BOARD
    dark = torch.tensor(
        [(i, j) for i in range(BOARD) for j in range(BOARD) if (i + j) % 2 == 0],
        dtype=torch.float32,
        device=generator.device,
    )
    square = torch.randint(len(dark), (n,), generator=generator, device=generator.device)
    # A margin of 1e-6 of a side keeps float32 rounding from putting a point on a square's edge.
    within = torch.rand(n, 2, generator=generator, device=generator.device) * (1 - 2e-6) + 1e-6
    return (dark[square] + within) * side - BOARD_HALF_WIDTH
