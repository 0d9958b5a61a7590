#!/usr/bin/env bash
# Set everything up and run the service on the embedded defaults: SQLite, a file-system Celery
# broker, artifacts on local disk. Starts a real Celery worker, fills the `demo` workspace from the
# Adult census data (MLGOV_DEMO=0: no demo, and no workspace unless MLGOV_WORKSPACE names one), then
# serves the dashboard; Ctrl-C stops everything. State and logs live under MLGOV_VAR_DIR (var/).
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PORT:-8000}"
url="http://127.0.0.1:${port}"
echo "==> preparing .venv/ (the first run installs the dependencies; this takes a few minutes)"
source scripts/venv.sh
PY=.venv/bin/python
vardir="${MLGOV_VAR_DIR:-var}"
logs="${vardir}/log"
mkdir -p "$logs"
demo="${MLGOV_DEMO:-1}"
echo "==> migrating the database (${vardir}/mlgov.sqlite3 unless DATABASE_URL is set)"
$PY manage.py migrate --noinput >"$logs/migrate.log"
echo "==> collecting static files into staticfiles/ (content-hashed names, gzip copies, long caching)"
$PY manage.py collectstatic --noinput >"$logs/collectstatic.log"
if [ "$demo" != "0" ]; then
  echo "==> creating the admin user and the demo workspace"
  $PY manage.py bootstrap
  home="${url}/w/demo/"
else
  echo "==> creating the admin user"
  $PY manage.py bootstrap --workspace "${MLGOV_WORKSPACE:-}"
  home="${url}/"
fi
echo "==> starting the Celery worker with its scheduler (log: ${logs}/worker.log)"
.venv/bin/celery -A config worker --beat --loglevel=INFO --queues=default --concurrency=2 >"$logs/worker.log" 2>&1 &
worker=$!
web=""
trap 'kill $worker $web 2>/dev/null; wait $worker $web 2>/dev/null' EXIT INT TERM
if [ "$demo" != "0" ]; then
  echo "==> seeding the demo workspace from the Adult census data (the worker computes the evidence)"
  $PY manage.py demo_seed --base-url "$url"
fi
echo "==> starting the web server (scripts/web.sh: nginx in front of gunicorn when nginx is installed)"
WEB_BIND="127.0.0.1:${port}" MLGOV_VAR_DIR="$vardir" bash scripts/web.sh &
web=$!
for _ in $(seq 1 60); do
  if $PY -c "import urllib.request,sys; urllib.request.urlopen('${url}/api/v1/health', timeout=1)" 2>/dev/null; then
    break
  fi
  kill -0 "$web" 2>/dev/null || { echo "the web server did not start; see ${logs}/web.log" >&2; exit 1; }
  sleep 1
done
echo
echo "==> mlgov is running: dashboard ${home}   (API docs: ${url}/api/docs/)"
echo "    sign in with an account printed above; Ctrl-C stops the server and the worker"
wait "$web"
