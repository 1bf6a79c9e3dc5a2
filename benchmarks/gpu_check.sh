#!/usr/bin/env bash
# GPU check: the generation benchmark (vLLM engine alone) on a CUDA machine.
#
#   benchmarks/gpu_check.sh MODEL_DIR [extra benchmarks.generation options]
#
# Needs a Python with CUDA vLLM installed ($PYTHON, default python3) and a model directory
# vLLM can serve (the demo model converted by `python -m models_backend.demo_model DIR`
# works; so does any HF-style directory). Runs the same 64 prompts x 128 tokens as the CPU
# benchmark, in compiled mode (CUDA graphs), all prompts in flight at once, and stops
# after five minutes whatever happens. Not used on the CPU path.
set -euo pipefail

MODEL_DIR=${1:?usage: benchmarks/gpu_check.sh MODEL_DIR [options]}
shift
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")/.."

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PYTHON" - <<'PY'
import torch, vllm
print(f"vllm {vllm.__version__}, torch {torch.__version__}, cuda {torch.cuda.is_available()}")
if not torch.cuda.is_available():
    raise SystemExit("no CUDA device visible")
PY

export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
export VLLM_CACHE_ROOT=${VLLM_CACHE_ROOT:-${TMPDIR:-/tmp}/arena-vllm-cache}
exec timeout --signal=TERM --kill-after=15 300 \
    "$PYTHON" -m benchmarks.generation --model-dir "$MODEL_DIR" --parts vllm \
    --no-eager --max-num-seqs 64 --sequential 4 "$@"
