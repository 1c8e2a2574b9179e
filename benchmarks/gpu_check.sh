#!/usr/bin/env bash
# The workbench on one GPU, offline, in a few minutes: training throughput on CPU and GPU, the early-exit
# executor's wall-clock against its FLOPs speed-up at batch 32 and 256, and its answers against the simulation
# (fp32 and bf16). Needs only torch, transformers, accelerate, pandas, pyarrow, scikit-learn and tqdm; no data,
# no backbone files, no install of the package (see benchmarks/gpu_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PRECISION="${PRECISION:-bf16}"
timeout 480 python benchmarks/gpu_check.py --device cuda --precision "$PRECISION" "$@"
