#!/usr/bin/env bash
# Create .venv with everything (model worker, Blender-as-a-module for tests/batch, dev tools).
# With --bpy42 also .venv-bpy42: the same with Blender 4.2 LTS as the module (bpy 4.2.0 wants numpy<2),
# where scripts/test.sh runs the add-on and batch tests a second time.
# Idempotent: a venv whose stamp matches pyproject.toml is left as it is. One line per step.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
with_bpy42=0
for arg in "$@"; do
  case "$arg" in
    --bpy42) with_bpy42=1 ;;
    *) echo "setup.sh: unknown option $arg (use --bpy42)" >&2; exit 2 ;;
  esac
done

# install_venv DIR EXTRAS: the project (editable) with EXTRAS into DIR, unless DIR's stamp is current.
install_venv() {
  local dir=$1 extras=$2
  local stamp="$dir/.salad-installed-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ -f "$stamp" ]; then
    echo "setup: $dir is up to date"
    return
  fi
  if [ ! -x "$dir/bin/python" ]; then
    echo "setup: $dir: creating the virtual environment ($("$PY" --version))"
    "$PY" -m venv "$dir"
  fi
  # setuptools>=77 reads pyproject's SPDX licence; tools/build_extension.py builds without isolation.
  echo "setup: $dir: pip and setuptools"
  "$dir/bin/python" -m pip install -q --upgrade pip "setuptools>=77"
  # The CPU build of torch 2.13.0 first (on these machines pip takes a local wheel; elsewhere PyPI's).
  echo "setup: $dir: torch 2.13.0"
  "$dir/bin/python" -m pip install -q "torch==2.13.0"
  echo "setup: $dir: salad-blender[$extras] and its dependencies"
  # -qq: pip 25+ shows setuptools' "Editable installation" notice as a banner; errors still print
  "$dir/bin/python" -m pip install -qq -e ".[$extras]"
  rm -f "$dir"/.salad-installed-*
  touch "$stamp"
}

install_venv .venv "dev,blender,video"
if [ "$with_bpy42" = 1 ]; then
  install_venv .venv-bpy42 "dev,blender42,video"
fi
echo "environment ready: $(pwd)/.venv$([ "$with_bpy42" = 1 ] && echo " and $(pwd)/.venv-bpy42")"
