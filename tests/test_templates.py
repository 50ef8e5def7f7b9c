"""`genlib new`: the names it refuses, and a written plugin that imports and registers under the
name given (`tests/test_e2e_templates.py` runs all three through `dvc exp run`)."""
import importlib.util

import pytest

from genlib.cli import main
from genlib.registry import DATASETS, METHODS, NETS
from genlib.templates import KINDS, TemplateError, write_plugin


@pytest.mark.parametrize("name, why", [
    ("My_Flow", "no plugin name"), ("2flow", "no plugin name"), ("class", "no plugin name"), ("ddpm", "already registered"),
])
def test_bad_names_are_refused_in_one_line(tmp_path, name, why):
    with pytest.raises(TemplateError, match=why) as info:
        write_plugin("method", name, tmp_path)
    assert "\n" not in str(info.value) and not list(tmp_path.iterdir())


@pytest.mark.parametrize("kind, registry", [("method", METHODS), ("model", NETS), ("dataset", DATASETS)])
def test_a_written_plugin_registers_under_its_name(tmp_path, monkeypatch, kind, registry):
    for entries in ("_impls", "_specs"):  # the registration goes with the test (genlib list is tested elsewhere)
        monkeypatch.setattr(registry, entries, dict(getattr(registry, entries)))
    name = f"tpl_{kind}_x"
    path = write_plugin(kind, name, tmp_path)
    assert KINDS[kind] not in path.read_text()  # every placeholder replaced
    spec = importlib.util.spec_from_file_location(name, path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert name in registry and registry.get(name).__name__ == f"Tpl{kind.capitalize()}X"


def test_the_command_refuses_to_overwrite(tmp_path, capsys):
    main(["new", "dataset", "tpl_rings", "--dir", str(tmp_path)])
    assert "written to" in capsys.readouterr().out
    (tmp_path / "tpl_rings.py").write_text("# mine\n")
    with pytest.raises(SystemExit):
        main(["new", "dataset", "tpl_rings", "--dir", str(tmp_path)])
    assert capsys.readouterr().err == f"error: new: {tmp_path / 'tpl_rings.py'} exists; not overwritten (remove it or pick another name)\n"
    assert (tmp_path / "tpl_rings.py").read_text() == "# mine\n"
