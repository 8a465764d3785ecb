#!/usr/bin/env bash
# README command 1: install (or reuse) .venv, then run the whole pipeline on the embedded scientific set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/genrec run "${1:-configs/demo.yaml}" "${@:2}"
