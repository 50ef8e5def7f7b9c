"""An experiment's output files, read without checking it out.

``dvc exp show --json`` gives params and metrics only. An experiment is a git commit whose
``dvc.lock`` names each stage output's md5; the content is in the DVC cache under that md5
(``<cache>/files/md5/ab/cdef...``, or ``<cache>/ab/cdef...`` for outputs a DVC 2 lock names
without ``hash: md5``). A directory output's md5 ends in ``.dir``: its cache entry is a JSON
manifest of ``{"relpath", "md5"}``, one per file. Every file read is checked against its md5, so a
damaged cache entry reads as missing, not as wrong data.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path, PurePosixPath

import yaml

WORKSPACE = "workspace"


def _git(repo: Path, *args: str) -> bytes | None:
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def cache_dir(repo: Path) -> Path:
    """DVC's cache folder (``dvc cache dir``: honours ``cache.dir`` in the config), else ``.dvc/cache``."""
    try:
        done = subprocess.run(["dvc", "cache", "dir"], cwd=repo, capture_output=True, text=True, timeout=60)
        if done.returncode == 0 and done.stdout.strip():
            return Path(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired):
        pass
    return repo / ".dvc" / "cache"


class ExperimentFiles:
    """Files of any experiment rev of ``repo``: ``read(rev, "data/samples/info.json")``."""

    def __init__(self, repo: Path, cache: Path | None = None) -> None:
        self.repo = Path(repo)
        self.cache = cache if cache is not None else cache_dir(self.repo)
        prefix = _git(self.repo, "rev-parse", "--show-prefix")  # the DVC project inside its git repo
        self.prefix = prefix.decode().strip() if prefix else ""
        self._outs: dict[str, dict[str, tuple[str, bool]]] = {}
        self._manifests: dict[str, dict[str, tuple[str, bool]]] = {}

    def outs(self, rev: str) -> dict[str, tuple[str, bool]]:
        """Each output path of the rev's ``dvc.lock`` -> (md5, DVC 3 layout)."""
        if rev not in self._outs:
            text = _git(self.repo, "show", f"{rev}:{self.prefix}dvc.lock")
            try:
                lock = yaml.safe_load(text) if text else {}
            except yaml.YAMLError:
                lock = {}
            found = {}
            stages = lock.get("stages") if isinstance(lock, dict) else None
            for stage in (stages or {}).values():
                for out in (stage or {}).get("outs") or []:
                    if isinstance(out, dict) and isinstance(out.get("md5"), str) and isinstance(out.get("path"), str):
                        found[str(PurePosixPath(out["path"]))] = (out["md5"], out.get("hash") == "md5")
            self._outs[rev] = found
        return self._outs[rev]

    def _blob(self, md5: str, dvc3: bool) -> bytes | None:
        base = self.cache / "files" / "md5" if dvc3 else self.cache
        try:
            data = (base / md5[:2] / md5[2:]).read_bytes()
        except (OSError, ValueError):
            return None
        if not md5.endswith(".dir") and hashlib.md5(data).hexdigest() != md5:
            return None
        return data

    def _manifest(self, md5: str, dvc3: bool) -> dict[str, tuple[str, bool]]:
        """A ``.dir`` entry's files, relpath -> (md5, layout); read once per md5."""
        if md5 not in self._manifests:
            data = self._blob(md5, dvc3)
            try:
                entries = json.loads(data) if data else []
            except ValueError:
                entries = []
            self._manifests[md5] = {
                e["relpath"]: (e["md5"], dvc3) for e in (entries if isinstance(entries, list) else [])
                if isinstance(e, dict) and isinstance(e.get("relpath"), str) and isinstance(e.get("md5"), str)
            }
        return self._manifests[md5]

    def _files_under(self, rev: str, path: str) -> dict[str, tuple[str, bool]]:
        """Tracked files at or under ``path`` (relative to the project) -> (md5, layout)."""
        path = str(PurePosixPath(path))
        found = {}
        for out, (md5, dvc3) in self.outs(rev).items():
            if md5.endswith(".dir") and (path == out or path.startswith(out + "/") or out.startswith(path + "/")):
                for rel, entry in self._manifest(md5, dvc3).items():
                    found[f"{out}/{rel}"] = entry
            elif out == path or out.startswith(path + "/"):
                found[out] = (md5, dvc3)
        return {p: e for p, e in found.items() if p == path or p.startswith(path + "/")}

    def read(self, rev: str, path: str) -> bytes | None:
        """The file's bytes in that rev, or None where the lock or the cache does not have it."""
        if rev == WORKSPACE:
            try:
                return (self.repo / path).read_bytes()
            except OSError:
                return None
        entry = self._files_under(rev, path).get(str(PurePosixPath(path)))
        return self._blob(*entry) if entry else None

    def listdir(self, rev: str, folder: str) -> list[str]:
        """Names of the files directly in ``folder`` in that rev, sorted."""
        if rev == WORKSPACE:
            where = self.repo / folder
            return sorted(p.name for p in where.iterdir() if p.is_file()) if where.is_dir() else []
        folder = str(PurePosixPath(folder))
        return sorted({p[len(folder) + 1:] for p in self._files_under(rev, folder) if "/" not in p[len(folder) + 1:] and p != folder})
