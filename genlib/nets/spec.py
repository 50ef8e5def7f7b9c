"""The specs of the networks: their ``model:`` keys and the data they take, without torch. The
networks are in ``mlp.py`` and ``unet.py``, whose classes inherit these."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genlib.params import positive, spec


def _dropout_ok(p: float) -> bool:
    return 0.0 <= p < 1.0


def _all_positive(values: tuple[int, ...]) -> bool:
    return len(values) > 0 and all(v > 0 for v in values)


@dataclass(frozen=True)
class MLPParams:
    nblocks: int = spec(4, positive, "a positive integer")  # residual blocks
    nunits: int = spec(64, positive, "a positive integer")  # width of every block
    time_emb: Literal["learnable", "sinusoidal"] = "learnable"
    time_emb_size: int = spec(32, positive, "a positive integer")
    layer_norm: bool = True  # pre-norm inside each residual block (never on the residual stream)
    dropout: float = spec(0.0, _dropout_ok, "a number in [0, 1)")
    skip_connection: bool = True  # residual (x + block(x)) rather than plain stacking


class MLPSpec:
    Params = MLPParams
    data_kinds = ("points",)  # flat data; images need a convolutional network


@dataclass(frozen=True)
class UNetParams:
    """Params of the U-Net (the ``model:`` section); defaults fit 28x28 MNIST and 32x32 CIFAR-10."""

    channels: int = spec(64, positive, "a positive integer")  # width of the first level
    channel_mult: tuple[int, ...] = spec((1, 2, 2), _all_positive, "a non-empty list of positive integers")
    num_res_blocks: int = spec(2, positive, "a positive integer")  # per level (Ho et al., 2020: 2)
    # Feature-map sizes (heights) with self-attention, besides the middle block's; null = the size
    # after the first downsampling (14 for 28x28, 16 for 32x32, where Ho et al., 2020, use it).
    attention_resolutions: tuple[int, ...] | None = spec(
        None, _all_positive, "a non-empty list of positive sizes, or null (half the image size)"
    )
    num_heads: int = spec(4, positive, "a positive integer")  # Nichol & Dhariwal (2021): 4
    dropout: float = spec(0.0, _dropout_ok, "a number in [0, 1)")  # Ho et al. (2020): 0.1 on CIFAR-10
    time_emb_mult: int = spec(4, positive, "a positive integer")  # time embedding = mult * channels
    groups: int = spec(32, positive, "a positive integer")  # GroupNorm groups, at most `channels`
    scale_shift: bool = True  # time as scale and shift of the norm (Nichol & Dhariwal, 2021)


class UNetSpec:
    Params = UNetParams
    data_kinds = ("images",)
