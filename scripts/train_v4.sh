#!/usr/bin/env bash
# Model v4 on a CPU machine, resumable: run it again after an interruption and it carries on where it stopped
# (labels already made are kept; training resumes from runs/v4/last.pt). About 15 minutes an epoch of 2,048
# samples at 448 px on 2 cores. On a GPU machine, scripts/device/ does the same in minutes.
#   nohup scripts/train_v4.sh > runs/v4.log 2>&1 &
set -euo pipefail
SHARED=${SHARED:-../shared}
HS="nice -n ${NICE:-10} .venv/bin/humanseg"
mkdir -p runs/labels
# 1. MODNet's soft map for every training photo of persons/ (the held-out tenth is never trained on).
$HS teach "$SHARED/data/persons" --out runs/labels/persons-modnet --teachers "$SHARED/weights/teachers" \
    --only modnet --split train --threads 2 --no-progress | tail -n 1
# 2. Both teachers on the held-out tenth: the teacher check scores against them where they agree.
$HS teach "$SHARED/data/persons" --out runs/labels/persons-heldout --teachers "$SHARED/weights/teachers" \
    --split heldout --threads 2 --no-progress | tail -n 1
# 3. The student: smp U-Net from the MODNet matting MobileNetV2, 448 px, seed ground truth + MODNet maps.
resume=""; [ -f runs/v4/last.pt ] && resume="--resume"
$HS train --data "$SHARED/data/human-segmentation" --distill runs/labels/persons-modnet:3.0 --min-agreement 0 \
    --encoder mobilenet_v2 --encoder-weights "$SHARED/weights/mobilenet_v2.modnet-matting.pth" --norm half \
    --decoder-channels 128,64,32,16,8 --size 448 --batch-size 8 --lr 5e-4 --epochs 40 --epoch-samples 2048 \
    --warmup-epochs 1 --loss confident --bystander-p 0.2 --scene-p 0.15 --val-every 2 --threads 2 \
    --out runs/v4 --no-progress $resume
