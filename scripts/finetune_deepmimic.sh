#!/bin/sh
# Fine-tune the demo model on Bandai-Namco + DeepMimic (issue 19). Resumable: run it again to continue.
# On a fresh machine it builds data_cache/bandai and data_cache/deepmimic (~1 min) and seeds the run from
# models/demo-dm-wip (the fine-tune's state carried between sessions, fp16: a warm start) if that exists,
# else from the shipped demo weights. Then the VAE stage to its configured iteration, then the denoiser
# (which needs the finished VAE). CONFIG picks the config (default: the latest stage of the fine-tune, whose
# iteration count lies past the wip export's; an older config would stop at once).
set -u
cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-runs/demo-dm}
CONFIG=${CONFIG:-demo_deepmimic_ema2}
export PYTHONPATH="$PWD" OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
    HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1}
[ -f data_cache/deepmimic/meta.json ] || "$PY" -m salad_model.training.data.deepmimic build --out data_cache/deepmimic || exit 1
[ -f data_cache/bandai/meta.json ] || "$PY" -m salad_model.training.data.bandai build --out data_cache/bandai || exit 1
if [ ! -f "$OUT/vae/latest.pt" ]; then
    SEED=salad_model/assets/demo
    [ -f models/demo-dm-wip/config.json ] && SEED=models/demo-dm-wip
    echo "seeding $OUT from $SEED"
    "$PY" -m salad_model.training.train init --config "$CONFIG" --dest "$SEED" --out "$OUT" || exit 1
fi
stage_done() {  # the stage's checkpoint is at the config's iteration
    "$PY" -c "import json,sys; from salad_model.training.checkpoint_state import load_checkpoint;\
c=json.load(open('salad_model/configs/$CONFIG.json')); it=load_checkpoint('$OUT/$1/latest.pt')['iter'];\
sys.exit(0 if it>=c['$1_train']['iters'] else 1)"
}
nice -n 19 "$PY" -m salad_model.training.train vae --config "$CONFIG" --out "$OUT" --threads 1 || exit 1
stage_done vae || { echo "VAE stopped before its last iteration; run again to continue"; exit 0; }
nice -n 19 "$PY" -m salad_model.training.train denoiser --config "$CONFIG" --out "$OUT" --threads 1
