"""A copy of the project in a temporary git repository with a tiny config, for the tests that
run the real dvc, and the commands to drive it."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COPY = ["genlib", "stages", "configs", "plugin_modules", "init", "dvc.yaml", "params.yaml", ".dvc/config", ".dvcignore", ".gitignore"]
TINY = {
    "data": {"nsamples": 2048, "ntest": 1000},
    "training": {"epochs": 3, "batch_size": 256},
    "eval": {"nsamples": 1000, "batch_size": 1000, "reverse_steps": 20, "n_exact": 500, "n_mmd": 500, "n_projections": 100},
    "ddpm": {"diffusion_steps": 20},
    "dlpm": {"diffusion_steps": 20},
    "run": {"log_every": 5, "progress": "never"},
}


def block(section: str) -> list[str]:
    """The commands of the first bash block under ``## <section>`` of the README, comments stripped."""
    text = (ROOT / "README.md").read_text()
    body = re.search(rf"^## {re.escape(section)}\n.*?```bash\n(.*?)```", text, re.S | re.M).group(1)
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in body.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict):
            merge(base.setdefault(k, {}), v)
        else:
            base[k] = v
    return base


def dvc_bin():
    return str(Path(sys.executable).parent / "dvc")


def env_for(path: Path) -> dict:
    env = dict(os.environ)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        PYTHONPATH=str(path),  # the copy's genlib, not the installed one
        GIT_AUTHOR_NAME="genlib test", GIT_AUTHOR_EMAIL="test@genlib.invalid",
        GIT_COMMITTER_NAME="genlib test", GIT_COMMITTER_EMAIL="test@genlib.invalid",
        DVC_NO_ANALYTICS="1",
    )
    return env


def make_repo(path: Path, over: dict | None = None):
    """The project copied into ``path`` with ``TINY`` (and ``over``) merged into its params, in a
    fresh git and DVC repository with one commit; returns ``(path, sh)``."""
    for name in COPY:
        src, dst = ROOT / name, path / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)
    params = merge(merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY), over or {})
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = env_for(path)

    def sh(*args, check=True):
        out = subprocess.run(args, cwd=path, env=env, capture_output=True, text=True)
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout + out.stderr

    sh("git", "init", "-q")
    sh("dvc", "init", "-q", "-f")  # keeps the copied config (analytics off)
    (path / ".dvc" / "config").write_text((ROOT / ".dvc" / "config").read_text())
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "tiny project")
    return path, sh
