#!/usr/bin/env bash
# Run the test suite. Creates .venv/ and installs the project with its dev extras first.
# Uses DATABASE_URL / CELERY_BROKER_URL when set, else the embedded defaults (SQLite, file broker).
#
#   scripts/test.sh              # everything (what CI runs)
#   scripts/test.sh --fast       # without the tests marked slow: those that start worker processes,
#                                # live servers, browsers or gunicorn, and the concurrency tests
#   scripts/test.sh [--fast] ARGS   # any pytest arguments, e.g. -k audit -x
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
marks=()
for arg in "$@"; do
  if [ "$arg" = "--fast" ]; then
    marks=(-m "not slow")
  else
    args+=("$arg")
  fi
done
source scripts/venv.sh dev
exec .venv/bin/python -m pytest "${marks[@]}" "${args[@]}"
