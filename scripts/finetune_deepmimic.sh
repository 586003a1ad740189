#!/bin/sh
# Fine-tune the demo model on Bandai-Namco + DeepMimic (issue 19). Resumable: run it again to continue.
# Needs data_cache/bandai and data_cache/deepmimic (docs/training.md) and a run seeded from the shipped
# weights:  python -m salad_model.training.train init --config demo_deepmimic --out runs/demo-dm
# Runs the VAE stage to its configured iteration, then the denoiser (which needs the finished VAE).
set -u
cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-runs/demo-dm}
export PYTHONPATH="$PWD" OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
    HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1}
stage_done() {  # the stage's checkpoint is at the config's iteration
    "$PY" -c "import json,sys; from salad_model.training.checkpoint_state import load_checkpoint;\
c=json.load(open('salad_model/configs/demo_deepmimic.json')); it=load_checkpoint('$OUT/$1/latest.pt')['iter'];\
sys.exit(0 if it>=c['$1_train']['iters'] else 1)"
}
nice -n 19 "$PY" -m salad_model.training.train vae --config demo_deepmimic --out "$OUT" --threads 1 || exit 1
stage_done vae || { echo "VAE stopped before its last iteration; run again to continue"; exit 0; }
nice -n 19 "$PY" -m salad_model.training.train denoiser --config demo_deepmimic --out "$OUT" --threads 1
