#!/usr/bin/env bash
# ruff (lint and import order) and mypy (with the Django and DRF plugins).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh dev
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/python -m mypy
