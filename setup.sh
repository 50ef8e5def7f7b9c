#!/usr/bin/env bash
# Fresh machine to results: creates .venv with genlib and its pinned dependencies, then runs the
# default pipeline (dvc repro).   bash setup.sh            install, then dvc repro
#                                 bash setup.sh --no-repro  install only (CI does this)
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
# torch first and pinned: an unpinned or newer torch would pull gigabytes of CUDA packages.
.venv/bin/pip install --quiet torch==2.13.0
.venv/bin/pip install --quiet -r requirements.lock
.venv/bin/pip install --quiet --no-deps -e .
if [ "${1:-}" != "--no-repro" ]; then
  PATH="$PWD/.venv/bin:$PATH" dvc repro
fi
