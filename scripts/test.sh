#!/usr/bin/env bash
# Run the whole test suite. Creates .venv/ and installs the project with its dev extras first.
# Uses DATABASE_URL / CELERY_BROKER_URL when set, else the embedded defaults (SQLite, file broker).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh dev
exec .venv/bin/python -m pytest "$@"
