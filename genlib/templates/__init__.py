"""``genlib new model|dataset|method NAME``: a ready plugin file from a template.

Each template in this folder is a working plugin under a placeholder name (``my_method``,
``my_model``, ``my_dataset``; its class ``MyMethod``, ...). :func:`write_plugin` writes it to
``plugin_modules/NAME.py`` under the name given, where ``plugins: [NAME]`` in params.yaml imports
it (README, "Plugins"); the templates are never imported here.
"""
from __future__ import annotations

import keyword
import re
from pathlib import Path

KINDS = {"method": "my_method", "model": "my_model", "dataset": "my_dataset"}  # kind -> placeholder
NAME = re.compile(r"[a-z][a-z0-9_]*")


class TemplateError(ValueError):
    """A name or a file ``genlib new`` refuses, in one line."""


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def write_plugin(kind: str, name: str, folder: str | Path = "plugin_modules") -> Path:
    """``folder/NAME.py`` from the ``kind`` template; an existing file is never overwritten."""
    from genlib.registry import DATASETS, METHODS, NETS

    if not NAME.fullmatch(name) or keyword.iskeyword(name):
        raise TemplateError(f"{name!r} is no plugin name: lower-case letters, digits and _, starting with a letter")
    registry = {"method": METHODS, "model": NETS, "dataset": DATASETS}[kind]
    if name in registry:
        raise TemplateError(f"{kind} {name!r} is already registered (built in); pick another name")
    path = Path(folder) / f"{name}.py"
    if path.exists():
        raise TemplateError(f"{path} exists; not overwritten (remove it or pick another name)")
    placeholder = KINDS[kind]
    text = (Path(__file__).parent / f"{kind}.py").read_text()
    text = text.replace(placeholder, name).replace(camel(placeholder), camel(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x") as fh:  # "x": a file that appeared meanwhile is not overwritten either
        fh.write(text)
    return path
