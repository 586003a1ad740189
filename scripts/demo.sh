#!/usr/bin/env bash
# Install everything, then text → animated armature in a .blend (+ preview render) with the bundled demo model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1
PROMPT="${1:-a person walks forward and waves with the right hand}"
.venv/bin/python tools/batch.py --prompt "$PROMPT" --seconds 4 --seed 0 --out out/demo --render --force
ls -l out/demo
