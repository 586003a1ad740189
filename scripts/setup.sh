#!/usr/bin/env bash
# Create .venv with everything (model worker, Blender-as-a-module for tests/batch, dev tools).
# Idempotent: re-running with an unchanged pyproject.toml skips the install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.salad-installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # The CPU build of torch 2.13.0 first (on these machines pip takes a local wheel; elsewhere PyPI's).
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev,blender,video]"
  touch "$stamp"
fi
echo "environment ready: $(pwd)/.venv"
