#!/usr/bin/env bash
# The v4 training run on a GPU machine (the device tool), in two calls over the parts scripts/device/pack.py
# made (each call may carry at most 64 MiB):
#   scripts/device/run.sh label-a   # carry .device/a: starts labelling its photos with MODNet, in the background
#   scripts/device/run.sh train     # carry .device/b: labels its photos, waits for part a, trains, packs results
# Labelling is `humanseg teach --only modnet` on the CPU cores (ONNX Runtime); training is `humanseg train`
# with --device cuda. Results (model folders, history, labels) go to $OUT. Settings: DEVICE, WORKERS, BUDGET.
set -euo pipefail
export PYTHONUNBUFFERED=1
D=.device
# Each call's copy of the work tree replaces the last one's, so part a and what is made from it live outside it.
K=${KEEP:-/tmp/humanseg-device}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
WORKERS=${WORKERS:-14}
BUDGET=${BUDGET:-330}
OUT=${OUT:-$D/out}
mkdir -p "$OUT"

setup() {  # the device has torch, timm, onnxruntime; smp travels as a wheel; humanseg runs from the checkout
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$K"/a/whl/*.whl 2>/dev/null || true
    rm -rf /tmp/pkg && mkdir -p /tmp/pkg/humanseg && cp humanseg/*.py /tmp/pkg/humanseg/
    for part in core web worker ml migrations; do ln -s "$PWD/$part" /tmp/pkg/humanseg/$part; done
    export PYTHONPATH=/tmp/site:/tmp/pkg
}

teach() {  # teach IMAGES LABELS WORKERS
    "$PY" -P -m humanseg.ml.cli teach "$1" --out "$2" --teachers "$K/a/teachers" --only modnet \
        --workers "$3" --threads 2 --no-progress
}

case "$1" in
label-a)
    rm -rf "$K" && mkdir -p "$K" && cp -r "$D/a" "$K/a"
    setup
    test -f "$K/a/teachers/modnet.onnx"
    setsid nohup bash -c "$(declare -f teach); K=$K; PY=$PY; PYTHONPATH=$PYTHONPATH; export PYTHONPATH; \
        teach $K/a/persons $K/labels-a 8 > $K/label-a.log 2>&1; touch $K/label-a.done" > /dev/null 2>&1 &
    sleep 5; cat "$K/label-a.log" || true; nproc; nvidia-smi -L || true
    ;;
train)
    setup
    if [ ! -f "$K/a/teachers/modnet.onnx" ]; then echo "part a is not on this machine"; exit 3; fi
    t0=$(date +%s)
    teach "$D/b/persons" "$D/labels-b" 8 | tail -c 400
    while [ ! -f "$K/label-a.done" ]; do sleep 2; done
    tail -c 400 "$K/label-a.log"; echo "labelling done after $(( $(date +%s) - t0 )) s"
    "$PY" -P -m humanseg.ml.cli train --data "$D/b/seed" --distill "$D/labels-b:2.0" --distill "$K/labels-a:1.0" \
        --min-agreement 0 --encoder mobilenet_v2 --encoder-weights "$K/a/encoder.pth" --norm half \
        --decoder-channels 128,64,32,16,8 --size 448 --batch-size 32 --lr 1e-3 --epochs 400 \
        --epoch-samples 8192 --warmup-epochs 1 --loss confident --bystander-p 0.2 --scene-p 0.15 \
        --device "$DEVICE" --workers "$WORKERS" --val-every 5 --time-budget "$BUDGET" --threads 4 \
        --out "$D/run" --no-progress ${EXTRA:-} > "$OUT/train.log" 2>&1 || echo "train exited with $?"
    grep -v "Warning\|warn(" "$OUT/train.log" | tail -n 40
    for model in best final; do  # float16 weights + config: the files back are 16 MiB at most each
        "$PY" -P -c "import sys; from safetensors.torch import load_file, save_file; \
s = load_file(sys.argv[1]); save_file({k: v.half() if v.is_floating_point() else v for k, v in s.items()}, sys.argv[2])" \
            "$D/run/$model/model.safetensors" "$OUT/$model.safetensors" || true
        cp "$D/run/$model/config.json" "$OUT/$model.config.json" || true
    done
    cp "$D/run/history.json" "$OUT/" || true
    cp -r "$D/labels-b" "$K/" && tar -C "$K" -czf "$OUT/labels.tgz" labels-a labels-b
    ls -la "$OUT"; echo "all done after $(( $(date +%s) - t0 )) s"
    ;;
esac
