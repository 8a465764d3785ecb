#!/usr/bin/env bash
# README command 2: install (or reuse) .venv, then run the whole test suite (vLLM and HTTP tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
