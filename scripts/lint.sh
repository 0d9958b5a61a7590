#!/usr/bin/env bash
# ruff (lint and import order), mypy (with the Django and DRF plugins) and import-linter (the apps'
# layers, [tool.importlinter] in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh dev
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/python -m mypy
.venv/bin/lint-imports --no-cache --no-logo
