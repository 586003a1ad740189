#!/usr/bin/env bash
# Install everything, then run the whole test suite (what CI runs): on Blender 5.0.1 (.venv), then the
# add-on and batch tests (tests/bpy_suite.py lists them) again on Blender 4.2 LTS (.venv-bpy42).
# Arguments go to the first run. SALAD_BPY42=0 leaves out the 4.2 run (not under CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
bpy42=1
if [ "${SALAD_BPY42:-1}" = 0 ]; then
  case "${CI:-}" in
    1|true|yes) echo "test.sh: CI=true runs the Blender 4.2 tests (SALAD_BPY42=0 ignored)" ;;
    *) bpy42=0 ;;
  esac
fi
if [ "$bpy42" = 1 ]; then bash scripts/setup.sh --bpy42; else bash scripts/setup.sh; fi
export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/python -m ruff check .
status=0
bpy_main=$(.venv/bin/python tests/bpy_suite.py --pin blender)  # the versions come from pyproject.toml's pins
echo "test.sh: the whole suite on Blender $bpy_main (.venv)"
SALAD_EXPECT_BPY=$bpy_main .venv/bin/python -m pytest -q "$@" || status=$?
if [ "$bpy42" = 1 ]; then
  listed=$(.venv-bpy42/bin/python tests/bpy_suite.py)  # set -e: a failure here stops the script
  mapfile -t bpy_tests <<< "$listed"
  bpy_lts=$(.venv-bpy42/bin/python tests/bpy_suite.py --pin blender42)
  echo "test.sh: the Blender tests again on Blender $bpy_lts LTS (.venv-bpy42): ${bpy_tests[*]}"
  SALAD_EXPECT_BPY=$bpy_lts .venv-bpy42/bin/python -m pytest -q "${bpy_tests[@]}" || status=$((status ? status : $?))
else
  echo "test.sh: the Blender 4.2 LTS run is left out (SALAD_BPY42=0)"
fi
exit "$status"
