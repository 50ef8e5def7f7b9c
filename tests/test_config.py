"""params.yaml is checked at the door: every bad input is one ConfigError naming key and value."""
import copy
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from genlib.config import from_dict, load
from genlib.errors import ConfigError
from genlib.registry import METHODS

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_change(dotted, value, base=None):
    raw = copy.deepcopy(DEFAULTS if base is None else base)
    node = raw
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return raw


DELETE = object()

BAD = [
    ("method", "dlmp", "method"),
    ("method", 3, "method"),
    ("seed", -1, "seed"),
    ("seed", "zero", "seed"),
    ("seed", DELETE, "seed"),
    ("dlpm.alpha", 0.0, "dlpm.alpha"),
    ("dlpm.alpha", 2.5, "dlpm.alpha"),
    ("dlpm.alpha", "high", "dlpm.alpha"),
    ("dlpm.loss", "l3", "dlpm.loss"),
    ("dlpm.alpah", 1.5, "dlpm.alpah"),
    ("data.dataset", "sas_grd", "data.dataset"),
    ("data.n_mixture", 8, "data.n_mixture"),
    ("data.weights", [0.5, 0.5], "data.weights"),
    ("data.weights", [0.2] * 9, "data.weights"),
    ("data.std", -0.1, "data.std"),
    ("data.nsamples", 1.5, "data.nsamples"),
    ("optim.lr", -1e-3, "optim.lr"),
    ("optim.lr", 0, "optim.lr"),
    ("optim.lr", True, "optim.lr"),
    ("optim.schedule", "linear", "optim.schedule"),
    ("optim.betas", [0.9], "optim.betas"),
    ("training.epochs", 0, "training.epochs"),
    ("training.ema_rates", [1.5], "training.ema_rates"),
    ("training.batch_sise", 10, "training.batch_sise"),
    ("model.net", "resnet", "model.net"),
    ("model.nunits", -4, "model.nunits"),
    ("model.time_emb", "fourier", "model.time_emb"),
    ("model.dropout", 1.0, "model.dropout"),
    ("eval.sampler", "ode", "eval.sampler"),
    ("eval.eta", 1.5, "eval.eta"),
    ("eval.ema", 0.5, "eval.ema"),
    ("eval.reverse_steps", 500, "eval.reverse_steps"),
    ("run.device", "tpu", "run.device"),
    ("run.device", "cuda:one", "run.device"),
    ("run.precision", "fp16", "run.precision"),
    ("run.compile", "yes", "run.compile"),
    ("run.nproc_per_node", 0, "run.nproc_per_node"),
    ("run.backend", "mpi", "run.backend"),
    ("run.loggers", ["dvclive", "wandb"], "run.loggers"),
    ("run.loggers", ["tensorboard"], "run.loggers"),
    ("run.loggers", "dvclive", "run.loggers"),
    ("training.callbacks", ["unregistered"], "training.callbacks"),
    ("training.eval_every", -20, "training.eval_every"),
    ("training.eval_metrics", "w1_sliced", "training.eval_metrics"),
    ("training.patience", -1, "training.patience"),
    ("data.nval", 1.5, "data.nval"),
    ("eval.checkpoint", "first", "eval.checkpoint"),
    ("eval.checkpoint", "best", "eval.checkpoint"),  # without training.select
    ("training.keep_every", 7, "training.keep_every"),
    ("trainig", {}, "trainig"),
    ("data", [1, 2], "data"),
    # what the sizes imply (genlib/sizes.py); the base's sizes are those of params.yaml or TINY
    ("training.epochs", 1.0e12, "training.epochs"),  # integral, so 10^12: more than 10^9 steps
    ("training.epochs", 2.0**60, "training.epochs"),  # beyond 2**53 a float is no exact integer
    ("training.batch_size", 100_000, "training.batch_size"),  # more than data.nsamples
    ("data.ntest", 1, "data.ntest"),
    ("eval.nsamples", 1, "eval.nsamples"),
    ("eval.k", 10**6, "eval.k"),  # k >= eval.nsamples and data.ntest
    ("eval.n_mmd", 1, "eval.n_mmd"),
    ("data.data_alpha", 1.0, "data.data_alpha"),  # below 1.07 the data's draws of A can exceed float32
    ("data.nsamples", 10**12, "data.nsamples"),  # 8 TB of points
    ("eval.nsamples", 10**12, "eval.nsamples"),
]


@pytest.mark.parametrize("dotted,value,key", BAD, ids=[f"{d}={v!r}" for d, v, _ in BAD])
def test_bad_params_name_the_key(dotted, value, key):
    with pytest.raises(ConfigError) as info:
        from_dict(with_change(dotted, value))
    message = str(info.value)
    assert key in message and "\n" not in message and "expected" in message


def test_defaults_load():
    cfg = load(ROOT / "params.yaml")
    assert cfg.method == "dlpm" and cfg.method_params.alpha == 1.8
    assert cfg.data.weights[2] == 0.3 and cfg.eval.reverse_steps == 100


def test_misspelt_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match="did you mean 'alpha'"):
        from_dict(with_change("dlpm.alpah", 1.5))


def test_yaml_exponent_without_dot_is_a_number():
    raw = with_change("optim.lr", "5e-3")
    assert from_dict(raw).optim.lr == 0.005


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="params file"):
        load(tmp_path / "nope.yaml")


SYNTAX_ERRORS = [
    # (params.yaml text, the one line after "<path>:"): line and column 1-based, where YAML stopped
    ("seed: 0\nmethod: ddpm extra: 1\n", "2:19: mapping values are not allowed here"),
    ("seed: 0\ntraining:\n  epochs: 3\n batch_size: 8\n",
     "4:2: expected <block end>, but found '<block mapping start>' (while parsing a block mapping at 1:1)"),
    ("seed: [1,\n", "2:1: expected the node content, but found '<stream end>'"),
]


@pytest.mark.parametrize("text,line", SYNTAX_ERRORS, ids=[w for _, w in SYNTAX_ERRORS])
def test_a_yaml_syntax_error_names_file_line_column_and_cause(tmp_path, text, line, capsys):
    from genlib.cli import main

    bad = tmp_path / "params.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(bad)
    assert str(err.value) == f"{bad}:{line}"
    with pytest.raises(SystemExit) as exit_:  # `genlib check` prints it as its one line
        main(["check", str(bad)])
    assert exit_.value.code == 2 and capsys.readouterr().err == f"error: {bad}:{line}\n"


def test_a_yaml_syntax_error_in_an_hvae_model_file_names_that_file(tmp_path):
    from genlib.methods.hvae.graph import read_model_file

    model = tmp_path / "ladder.yaml"
    model.write_text("blocks:\n  - name: x\n    type: input\n   input: y\n")
    with pytest.raises(ConfigError) as err:
        read_model_file(str(model))
    assert str(err.value).startswith(f"{model}:4:4: ") and str(err.value).endswith("; hvae.model_file names this file")


DUPLICATES = [
    # (params.yaml text, the message's words); YAML itself would keep the last value silently
    ("seed: 0\nmethod: ddpm\nseed: 1\n", "{path}: seed = '1' is not allowed; expected each key once (line 3; it is given first at line 1)"),
    ("seed: 0\nmethod: ddpm\ntraining:\n  epochs: 3\n  batch_size: 8\n  epochs: 5\n", "training.epochs = '5'"),
    ("seed: 0\nmethod: hvae\nhvae:\n  blocks:\n    - {z: 2, z: 4}\n", "hvae.blocks.0.z"),
    ("seed: 0\nmethod: ddpm\ntraining:\n  epochs: 3\ntraining:\n  epochs: 3\n", "training = '...'"),
]


@pytest.mark.parametrize("text,words", DUPLICATES, ids=[w for _, w in DUPLICATES])
def test_a_key_given_twice_is_refused(tmp_path, text, words):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert words.format(path=path) in str(err.value) and "\n" not in str(err.value)


def test_a_merge_key_overridden_is_not_a_duplicate_and_params_must_be_utf8(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 0\nmethod: ddpm\ntraining:\n  <<: {epochs: 3, batch_size: 8}\n  epochs: 4\n")
    assert load(path).training.epochs == 4
    path.write_bytes(b"seed: 0\nmethod: ddpm\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"UTF-8 text \(byte 0xe9 at offset 26\)"):
        load(path)


def test_overrides_and_resolved_dict():
    cfg = load(ROOT / "params.yaml", {"method": "ddpm", "eval.sampler": "ddim"})
    d = cfg.to_dict()
    assert d["method"] == "ddpm" and d["eval"]["sampler"] == "ddim"
    assert d["data"]["weights"][0] == 0.01 and isinstance(d["training"]["ema_rates"], list)


def test_plugin_registers_a_method(tmp_path, monkeypatch):
    (tmp_path / "my_method.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from genlib.methods.ddpm import DDPM
        from genlib.registry import METHODS

        @dataclass(frozen=True)
        class P:
            diffusion_steps: int = 10

        @METHODS.register("my_ddpm")
        class MyDDPM(DDPM):
            name = "my_ddpm"
            Params = P
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    raw = with_change("method", "my_ddpm")
    raw["plugins"] = ["my_method"]
    raw["eval"]["reverse_steps"] = 10
    raw["my_ddpm"] = {"diffusion_steps": 10}
    try:
        cfg = from_dict(raw)
        assert cfg.method == "my_ddpm" and cfg.method_params.diffusion_steps == 10
    finally:
        METHODS._specs.pop("my_ddpm", None), METHODS._impls.pop("my_ddpm", None)
        sys.modules.pop("my_method", None)


def test_unknown_plugin_module():
    raw = copy.deepcopy(DEFAULTS)
    raw["plugins"] = ["no_such_module_xyz"]
    with pytest.raises(ConfigError, match="no_such_module_xyz"):
        from_dict(raw)


def test_env_vars_expand_only_in_braced_form(monkeypatch):
    monkeypatch.setenv("GENLIB_TEST_SAMPLER", "dlim")
    cfg = from_dict(with_change("eval.sampler", "$env{GENLIB_TEST_SAMPLER}"))
    assert cfg.eval.sampler == "dlim"
    monkeypatch.delenv("GENLIB_TEST_SAMPLER")
    with pytest.raises(ConfigError, match=r"eval.sampler = '\$env\{GENLIB_TEST_SAMPLER\}'.*is set in the environment"):
        from_dict(with_change("eval.sampler", "$env{GENLIB_TEST_SAMPLER}"))
    with pytest.raises(ConfigError, match="eval.sampler"):  # a bare $VAR is not expanded
        from_dict(with_change("eval.sampler", "$GENLIB_TEST_SAMPLER"))


def test_dvc_templating_syntax_is_refused_with_what_to_write(monkeypatch):
    monkeypatch.setenv("GENLIB_TEST_SAMPLER", "dlim")
    with pytest.raises(ConfigError, match=r"DVC's templating reads it\); write \$env\{VAR\}"):
        from_dict(with_change("eval.sampler", "${GENLIB_TEST_SAMPLER}"))


def test_a_params_error_at_the_config_stage_names_file_key_allowed_and_why_that_stage(tmp_path, monkeypatch, capsys):
    from genlib.pipeline.keys import write_keys
    from genlib.pipeline.runner import stage_main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_change("training.epochs", 0)))
    with pytest.raises(SystemExit) as exit_:
        stage_main("config", write_keys)
    assert exit_.value.code == 2 and not (tmp_path / "data").exists()  # no key written
    refused = "error: params.yaml: training.epochs = 0 is not allowed; expected a positive integer, or 0 with training.init_from (its weights, untrained)"
    assert capsys.readouterr().err == refused + " (the config stage checks the params of every stage before any runs)\n"
    with pytest.raises(SystemExit):  # a later stage started by hand: the same line, without the note
        stage_main("train", lambda cfg: None)
    assert capsys.readouterr().err == refused + "\n"


def test_an_integral_float_is_an_integer_and_other_floats_are_refused():
    assert from_dict(with_change("training.epochs", 5.0)).training.epochs == 5
    for value in (5.5, 2.0**53 + 2):
        with pytest.raises(ConfigError, match=r"training.epochs = .* a float is taken only when integral and at most 2\*\*53"):
            from_dict(with_change("training.epochs", value))


def test_sizes_name_what_they_imply(monkeypatch):
    """The message says the steps, the sizes and the bytes against the memory available."""
    with pytest.raises(ConfigError, match=r"training.epochs = 1000000000000 .* at most 32258064 \(1000000000000 epochs of 31 steps, batch 1024 of 32000 items"):
        from_dict(with_change("training.epochs", 1.0e12))
    assert from_dict(with_change("training.epochs", 32258064)).training.epochs == 32258064
    with pytest.raises(ConfigError, match=r"batch_size = 32001 .* at most the 32000 training items \(data.nsamples = 32000\)"):
        from_dict(with_change("training.batch_size", 32001))
    with pytest.raises(ConfigError, match=r"eval.k = 6 .* below eval.nsamples = 6 and data.ntest = 15000"):
        from_dict(with_change("eval.nsamples", 6, base=with_change("eval.k", 6)))
    assert from_dict(with_change("eval.nsamples", 7, base=with_change("eval.k", 6))).eval.k == 6
    import genlib.sizes

    monkeypatch.setattr(genlib.sizes, "available_memory", lambda: 10**9)
    with pytest.raises(ConfigError, match=r"data.nsamples = 200000000 .* about 1.6 GB, 1 GB is available \(MemAvailable\)"):
        from_dict(with_change("data.nsamples", 200_000_000))
    with pytest.raises(ConfigError, match=r"eval.nsamples = 200000000 .* 200000000 generated points \(float32\) take about 1.6 GB"):
        from_dict(with_change("eval.nsamples", 200_000_000))
    monkeypatch.setattr(genlib.sizes, "available_memory", lambda: None)  # no /proc/meminfo: not checked
    assert from_dict(with_change("eval.nsamples", 200_000_000)).eval.nsamples == 200_000_000


def test_available_memory_reads_memavailable(tmp_path):
    from genlib.sizes import available_memory

    info = tmp_path / "meminfo"
    info.write_text("MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable:   12000000 kB\n")
    assert available_memory(info) == 12_000_000 * 1024
    assert available_memory(tmp_path / "none") is None
    assert available_memory("/proc/meminfo") is None or available_memory("/proc/meminfo") > 0


IMAGES = {"data.dataset": "mnist", "data.root": "/nonexistent", "model.net": "unet", "model.channels": 16,
          "model.channel_mult": [1, 2], "model.num_res_blocks": 1, "model.groups": 8, "training.batch_size": 64}


@pytest.mark.parametrize("changes,words", [
    ({"eval.nsamples": 3}, "eval.nsamples = 3 is not allowed; expected an integer >= 4 on images"),
    ({"data.max_test": 3}, "data.max_test = 3 is not allowed; expected null or an integer >= 4"),
    ({"data.max_test": 100, "eval.kid_subset_size": 101}, "eval.kid_subset_size = 101 is not allowed; expected null or an integer from 2 to 100"),
    ({"data.max_train": 32}, "training.batch_size = 64 is not allowed; expected at most the 32 training items (data.max_train = 32)"),
    ({"data.max_train": 640, "training.epochs": 10**8 + 1}, "training.epochs = 100000001 is not allowed; expected at most 100000000"),
    # the built-in sets' sizes and shapes (genlib.data.images_spec.NATIVE), and the memory they take
    ({"training.batch_size": 10**6}, "training.batch_size = 1000000 is not allowed; expected at most the 60000 training items (mnist has 60000 training images)"),
    ({"data.max_train": 10**6, "training.epochs": 10**9}, "training.epochs = 1000000000 is not allowed; expected at most 1067235 (1000000000 epochs of 937 steps, batch 64 of 60000 items"),
    ({"data.image_size": 100_000}, "data.image_size = 100000 is not allowed; expected a size that fits in memory: 60000 training and 10000 test images of 1x100000x100000 (uint8, 2 copies while prepared) take about 1.4 PB"),
    ({"data.dataset": "image_folder", "data.max_train": 10**12, "data.max_test": 100, "data.image_size": 64},
     "data.max_train = 1000000000000 is not allowed; expected a size that fits in memory: 1000000000000 training and 100 test images of 3x64x64"),
    ({"data.dataset": "cifar10", "eval.nsamples": 10**10}, "eval.nsamples = 10000000000 is not allowed; expected a size that fits in memory: 10000000000 generated images of 3x32x32 (float32, 2 copies) take about 246 TB"),
], ids=["nsamples", "max_test", "kid_subset_size", "max_train", "steps", "native_batch", "native_steps", "image_size", "folder_max_train", "samples"])
def test_image_sizes_are_checked_at_the_door(changes, words):
    """On images the door knows the sizes the params give (data.max_train, data.max_test) and
    those of the built-in sets, and the memory they take; the train stage checks the batch
    against the prepared set and the U-Net's activations (tests/test_bad_inputs.py)."""
    with pytest.raises(ConfigError) as err:
        load(ROOT / "params.yaml", {**IMAGES, **changes})
    assert words in str(err.value) and "\n" not in str(err.value)
    assert load(ROOT / "params.yaml", {**IMAGES, "data.max_train": 640, "data.max_test": 100, "eval.nsamples": 4}).eval.nsamples == 4


def test_the_exact_w1_matrices_are_counted_against_memory(monkeypatch):
    # n_exact points on each side (capped by both sets) hold about 6 float64 n x n matrices.
    import genlib.sizes

    monkeypatch.setattr(genlib.sizes, "available_memory", lambda: 10**9)
    big = with_change("eval.n_exact", 10_000, base=with_change("eval.nsamples", 15_000))
    with pytest.raises(ConfigError, match=r"eval.n_exact = 10000 .* the exact W1 of 10000-point sets \(6 float64 10000 x 10000 matrices\) take about 4.8 GB, 1 GB is available"):
        from_dict(big)
    capped = with_change("data.ntest", 3000, base=big)  # the test set caps the subsample: 432 MB
    assert from_dict(capped).eval.n_exact == 10_000
