"""Migration of an hvae trained elsewhere: a genlib hVAE's weights exported under other names,
migrated back through an adapter into a checkpoint, sample bit for bit as the original; a
missing tensor, a wrong shape and an unknown adapter are refused with one line."""
import re

import pytest
import torch
import yaml

import genlib
from genlib import io
from genlib.cli import main
from genlib.config import load
from genlib.errors import DataError
from genlib.methods.hvae import HVAE
from genlib.migrate import ADAPTERS, export_weights, migrate_weights
from genlib.migrate import migrate_checkpoint
from genlib.pipeline.paths import Paths
from genlib.pipeline.trained import load_trained
from genlib.seeding import generator

from family_helpers import ROOT
from test_hvae import SMALL

SETTINGS = {"method": "hvae", "hvae.blocks": SMALL, "training.ema_rates": [0.99]}


@pytest.fixture(scope="module")
def original():
    cfg = load(ROOT / "params.yaml", SETTINGS)
    method = HVAE(cfg.method_params)
    torch.manual_seed(7)
    return cfg, method, method.networks((2,)).eval()


def test_round_trip_samples_bit_for_bit(original, tmp_path):
    cfg, method, nets = original
    foreign = export_weights(method, nets)
    assert not set(foreign) & set(nets.state_dict())  # other names than genlib's
    io.save_torch(tmp_path / "foreign.pt", foreign)
    migrate_checkpoint(cfg, tmp_path / "foreign.pt", "indexed", (2,), Paths(tmp_path).model)
    model = genlib.load(Paths(tmp_path).model)
    want = method.sample(nets, (500, 2), 1, generator(cfg.seed, "sample/0", "cpu"))
    assert torch.equal(model.sample(500, batch_size=500), want)
    assert torch.equal(model.sample(500, seed=3, batch_size=500), method.sample(nets, (500, 2), 1, generator(3, "sample/0", "cpu")))
    staged, _ = load_trained(cfg, Paths(tmp_path))  # as generate and evaluate load it
    for key, tensor in nets.state_dict().items():
        assert torch.equal(model.net.state_dict()[key], tensor) and torch.equal(staged.state_dict()[key], tensor), key


def test_a_plugin_adapter_through_the_command(original, tmp_path, capsys, monkeypatch):
    cfg, method, nets = original
    monkeypatch.setattr(ADAPTERS, "_impls", dict(ADAPTERS._impls))  # the registration goes with the test
    monkeypatch.setattr(ADAPTERS, "_specs", dict(ADAPTERS._specs))

    @ADAPTERS.register("test_prefixed")
    def prefixed(weights, graph):  # another framework's names: "model.<block>/<tensor>"
        return {k.removeprefix("model.").replace("/", "."): v for k, v in weights.items()}

    io.save_torch(tmp_path / "foreign.pt", {f"model.{k.replace('.', '/')}": v for k, v in nets.state_dict().items()})
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["method"], raw["hvae"]["blocks"], raw["training"]["ema_rates"] = "hvae", SMALL, [0.99]
    io.write_text(tmp_path / "params.yaml", yaml.safe_dump(raw))
    args = ["migrate", str(tmp_path / "foreign.pt"), "--data-shape", "2", "--params", str(tmp_path / "params.yaml")]
    main(args + ["--adapter", "test_prefixed", "--out", str(tmp_path / "m")])
    assert "written to" in capsys.readouterr().out
    model = genlib.load(tmp_path / "m")
    assert torch.equal(model.sample(300, batch_size=300), method.sample(nets, (300, 2), 1, generator(cfg.seed, "sample/0", "cpu")))
    with pytest.raises(SystemExit):
        main(args + ["--adapter", "nonesuch"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown migration adapter 'nonesuch'" in err and "indexed" in err


def test_missing_and_misshapen_tensors_name_block_and_tensor(original):
    _, method, nets = original
    foreign = export_weights(method, nets)
    index = [b.name for b in method.graph.blocks].index("mid")
    missing = {k: v for k, v in foreign.items() if k != f"layer{index}/p/0/weight"}
    with pytest.raises(DataError, match=r"^f\.pt: block mid tensor p\.0\.weight: missing \(no weight maps onto it through adapter 'indexed'\)$"):
        migrate_weights(method, (2,), missing, "indexed", "f.pt")
    wrong = {**foreign, f"layer{index}/p/0/weight": torch.zeros(3, 3)}
    with pytest.raises(DataError, match=r"block mid tensor p\.0\.weight: shape \(3, 3\) through adapter 'indexed', the graph needs \(\d+, \d+\)$"):
        migrate_weights(method, (2,), wrong, "indexed", "f.pt")
    with pytest.raises(DataError, match=r"'stray' through adapter 'indexed' match no block's tensor"):
        migrate_weights(method, (2,), {**foreign, "stray": torch.zeros(1)}, "indexed", "f.pt")


def test_only_a_checkpoint_marked_migrated_may_hold_weights_alone(original, tmp_path, monkeypatch):
    """``genlib migrate``'s mark lets training start from weights alone; the same body without it
    is a damaged checkpoint of the train stage, refused; 0 epochs need an init."""
    from genlib.errors import ConfigError
    from genlib.pipeline.continued import load_init
    from genlib.weights import with_digests

    cfg, method, nets = original
    io.save_torch(tmp_path / "foreign.pt", export_weights(method, nets))
    migrate_checkpoint(cfg, tmp_path / "foreign.pt", "indexed", (2,), tmp_path / "init" / "m")
    monkeypatch.chdir(tmp_path)
    tuned = load(ROOT / "params.yaml", {**SETTINGS, "training.init_from": "init/m", "training.epochs": 0})
    assert load_init(tuned, (2,))["state"]["step"] == 0
    body = io.load_torch(tmp_path / "init" / "m" / "checkpoint.pt", "checkpoint")
    io.save_torch(tmp_path / "init" / "unmarked.pt", with_digests({k: v for k, v in body.items() if k != "migrated_from"}))
    io.save_torch(tmp_path / "init" / "stepped.pt", with_digests({**body, "state": {**body["state"], "step": 5}}))
    for name, says in [("unmarked.pt", "holds the whole training state, or one genlib migrate wrote"),
                       ("stepped.pt", "a checkpoint whose step is a non-negative integer, 0 in a migrated one (it holds 5)")]:
        with pytest.raises(ConfigError, match=re.escape(says)):
            load_init(load(ROOT / "params.yaml", {**SETTINGS, "training.init_from": f"init/{name}"}), (2,))
    with pytest.raises(ConfigError, match=r"params.yaml: training\.epochs = 0 is not allowed; expected a positive integer, or 0 with training\.init_from"):
        load(ROOT / "params.yaml", {**SETTINGS, "training.epochs": 0})
