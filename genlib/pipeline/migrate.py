"""``genlib migrate``: a hierarchical VAE trained elsewhere as a genlib checkpoint.

The foreign state dict goes through a migration adapter onto the blocks of the graph that
``params.yaml``'s ``hvae`` section describes (:mod:`genlib.methods.hvae.migrate`), and is written
as the ``train`` stage writes its model folder: ``checkpoint.pt`` (the weights as the raw and as
every EMA's, stamped with the training params of ``params.yaml``), ``config.json`` and ``hvae.pt``.
``genlib.load`` samples from that folder, and ``generate`` / ``evaluate`` read it as trained.
"""
from __future__ import annotations

from pathlib import Path

from genlib import io
from genlib.config import Config, build_method
from genlib.errors import ConfigError
from genlib.methods.hvae.migrate import migrate_weights
from genlib.pipeline.keys import train_params
from genlib.weights import with_digests


def migrate_checkpoint(cfg: Config, weights_file: str | Path, adapter: str, data_shape: tuple[int, ...],
                       out: str | Path) -> Path:
    """Write ``out/checkpoint.pt`` (with ``config.json`` and ``hvae.pt``) from ``weights_file``;
    returns the checkpoint's path."""
    if cfg.method != "hvae":
        raise ConfigError("method", cfg.method, "hvae: migration adapters map weights onto an hvae block graph")
    method = build_method(cfg)
    weights = io.load_torch(weights_file, "state dict to migrate", "")
    nets = migrate_weights(method, data_shape, weights, adapter, str(weights_file))
    state = nets.state_dict()
    trained_with = train_params(cfg)
    body = {"state": {"net": state, "ema": {str(rate): state for rate in cfg.training.ema_rates}, "step": 0, "history": []},
            "config": trained_with, "data_shape": list(data_shape), "migrated_from": {"file": str(weights_file), "adapter": adapter}}
    folder = Path(out)
    io.save_torch(folder / "checkpoint.pt", with_digests(body))
    io.write_json(folder / "config.json", trained_with)
    method.export(nets, folder, tuple(data_shape))
    return folder / "checkpoint.pt"
