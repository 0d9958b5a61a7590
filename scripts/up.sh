#!/usr/bin/env bash
# Set everything up and run the service on the embedded defaults: SQLite, a file-system Celery
# broker, artifacts on local disk. Starts a real Celery worker and the web server; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> preparing .venv/ (first run installs the dependencies; this takes a few minutes)"
source scripts/venv.sh
PY=.venv/bin/python
mkdir -p var/log
echo "==> migrating the database"
$PY manage.py migrate --noinput >var/log/migrate.log
echo "==> creating the admin user and the demo workspace"
$PY manage.py bootstrap
echo "==> starting the Celery worker with its scheduler (log: var/log/worker.log)"
.venv/bin/celery -A config worker --beat --loglevel=INFO --queues=default --concurrency=2 >var/log/worker.log 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM
port="${PORT:-8000}"
echo "==> mlgov is running at http://127.0.0.1:${port}/  (API docs: http://127.0.0.1:${port}/api/docs/)"
echo "    sign in with the username and password above; Ctrl-C stops the server and the worker"
.venv/bin/gunicorn config.wsgi --bind "127.0.0.1:${port}" --workers 2 --access-logfile - --error-logfile -
