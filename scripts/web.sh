#!/usr/bin/env bash
# Serve the web tier in the foreground until stopped (SIGTERM or Ctrl-C stop everything it started).
#
# With nginx installed (or WEB_FRONT=nginx): nginx on WEB_BIND in front of gunicorn's sync workers on
# a Unix socket that only nginx reaches. nginx keeps the clients' connections, reads each body whole
# before passing the request on, lets WEB_FRONT_MAX_CONNS requests at once through (default 3 per
# worker) and answers the rest at once with 503 and Retry-After; the health check and static files
# are never refused. The client's address reaches the service in X-Forwarded-For
# (CLIENT_IP_HEADER is set for the workers). See docs/operations.md, "Capacity, overload and rate
# limits".
# Without nginx (or WEB_FRONT=gunicorn): gunicorn's threaded workers on WEB_BIND, with their own
# admission control.
#
#   WEB_BIND      address to serve on (default 127.0.0.1:${PORT:-8000})
#   WEB_FRONT     auto (default), nginx or gunicorn
#   WEB_WORKERS   gunicorn processes (gunicorn.conf.py: the usable cores, at least 2)
#   MLGOV_VAR_DIR where the socket, nginx's files and the logs go (default var/)
#   WEB_ACCESS_LOG  a file for one line per request, or off (default: ${MLGOV_VAR_DIR}/log/web-access.log)
#   PYTHON        the interpreter (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
bind="${WEB_BIND:-127.0.0.1:${PORT:-8000}}"
vardir="${MLGOV_VAR_DIR:-var}"
logs="${vardir}/log"
mkdir -p "$logs"
access_log="${WEB_ACCESS_LOG:-${logs}/web-access.log}"
front="${WEB_FRONT:-auto}"
if [ "$front" = "auto" ]; then
  if command -v nginx >/dev/null 2>&1; then front=nginx; else front=gunicorn; fi
fi

if [ "$front" = "gunicorn" ]; then
  echo "web.sh: gunicorn alone on ${bind}, nginx is not installed or WEB_FRONT=gunicorn (log: ${logs}/web.log)" >&2
  gunicorn_log=()
  [ "$access_log" = "off" ] || gunicorn_log=(--access-logfile "$access_log")
  exec "$PY" -m gunicorn config.wsgi -c gunicorn.conf.py --bind "$bind" "${gunicorn_log[@]}" \
    --error-logfile "${logs}/web.log"
fi
if [ "$front" != "nginx" ]; then
  echo "WEB_FRONT must be auto, nginx or gunicorn, not ${front}" >&2
  exit 2
fi
command -v nginx >/dev/null 2>&1 || { echo "WEB_FRONT=nginx but nginx is not installed" >&2; exit 2; }

# The socket's directory: short (a Unix socket's path has at most 107 bytes) and private to this
# instance, but nginx's workers (another user when nginx starts as root) may pass through it.
run="$(mktemp -d "${TMPDIR:-/tmp}/mlgov-web.XXXXXX")"
chmod 711 "$run"
socket="${run}/gunicorn.sock"
gunicorn_pid=""
nginx_pid=""
stop() {
  # Ignore further signals meanwhile (a process group stopped at once sends its parent's too), so the
  # cleanup runs to the end.
  trap '' INT TERM
  trap - EXIT
  [ -z "$nginx_pid" ] || kill -QUIT "$nginx_pid" 2>/dev/null || true
  [ -z "$gunicorn_pid" ] || kill -TERM "$gunicorn_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$run"
}
trap stop EXIT
trap 'exit 143' INT TERM

echo "web.sh: nginx on ${bind} in front of gunicorn (logs: ${logs}/web.log, ${logs}/nginx-error.log)" >&2
"$PY" manage.py nginx_conf --listen "$bind" --upstream "unix:${socket}" \
  --prefix "$run" --error-log "$(realpath "$logs")/nginx-error.log" \
  --access-log "$([ "$access_log" = "off" ] && echo off || realpath "$access_log")" \
  --upstream-timeout "${WEB_TIMEOUT:-120}" --output "${run}/nginx.conf"

# The workers: one request at a time each, the bounds and refusals are nginx's.
WEB_WORKER_CLASS=sync WEB_ADMISSION_CONTROL=0 \
  CLIENT_IP_HEADER="${CLIENT_IP_HEADER:-HTTP_X_FORWARDED_FOR}" \
  "$PY" -m gunicorn config.wsgi -c gunicorn.conf.py --bind "unix:${socket}" \
  --error-logfile "${logs}/web.log" &
gunicorn_pid=$!
for _ in $(seq 1 300); do
  [ -S "$socket" ] && break
  kill -0 "$gunicorn_pid" 2>/dev/null || { echo "gunicorn did not start; see ${logs}/web.log" >&2; exit 1; }
  sleep 0.1
done
nginx -p "$run" -c "${run}/nginx.conf" &
nginx_pid=$!
# Serve until either ends; then stop the other.
wait -n "$gunicorn_pid" "$nginx_pid" || true
echo "the web server stopped; see ${logs}/web.log and ${logs}/nginx-error.log" >&2
exit 1
