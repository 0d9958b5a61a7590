#!/usr/bin/env bash
# Fuzz the live API with schemathesis: a fresh PostgreSQL database, migrated and seeded with one of
# everything (`manage.py sample_seed`, demo/sample.py), served by gunicorn with production settings
# (DEBUG off), then every operation of /api/schema/ exercised for FUZZ_MAX_TIME seconds with an
# admin's token. Fails on any server error (5xx), any response that does not conform to the schema,
# or any content type the schema does not name for it. Stops the server and drops the database
# however it ends.
#
# Needs PostgreSQL (FUZZ_PG_URL, a role that may create databases). Settings, all optional:
#   FUZZ_PG_URL   postgres://postgres@127.0.0.1:5432   FUZZ_DB    mlgov_fuzz_<pid>
#   FUZZ_PORT     8077                                  FUZZ_MAX_TIME  120 (seconds of fuzzing)
#   FUZZ_SEED     schemathesis' random seed (printed by each run, to reproduce it)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh dev

pg_url="${FUZZ_PG_URL:-postgres://postgres@127.0.0.1:5432}"
db="${FUZZ_DB:-mlgov_fuzz_$$}"
port="${FUZZ_PORT:-8077}"
max_time="${FUZZ_MAX_TIME:-120}"
base="http://127.0.0.1:${port}"
PY=.venv/bin/python
if [[ ! "$db" =~ ^[a-z_][a-z0-9_]*$ ]]; then
  echo "FUZZ_DB must be a plain lower-case name, not '$db'" >&2
  exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/mlgov-fuzz.XXXXXX")"
web=""
db_created=""
cleanup() {
  local status=$?
  if [ -n "$web" ] && kill -0 "$web" 2>/dev/null; then
    kill -TERM "$web" 2>/dev/null || true
    wait "$web" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -s "$work/web.log" ]; then
    # Only the errors, each with its traceback: a record runs from its dated line to the next one.
    echo "-- the server's errors (the last 200 lines of them):" >&2
    awk '/^[0-9]{4}-[0-9]{2}-[0-9]{2} / { keep = ($3 == "ERROR" || $3 == "CRITICAL") }
         /^\[[^]]*\] \[[0-9]+\] \[/ { keep = ($0 ~ /\[(ERROR|CRITICAL)\]/) }
         keep' "$work/web.log" | tail -n 200 >&2
  fi
  if [ -n "$db_created" ]; then
    psql -q -X "$pg_url/postgres" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 \
      || echo "could not drop the database $db" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The server's environment: production settings on a throwaway database and var directory. The
# per-token rate limit and the admission limits would only slow the fuzzer down or refuse it.
export DJANGO_ENV=production
export DATABASE_URL="$pg_url/$db"
export MLGOV_VAR_DIR="$work/var"
export SECRET_KEY="$($PY -c 'import secrets; print(secrets.token_urlsafe(64))')"
export GATE_SIGNING_KEY="$($PY -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
export ALLOWED_HOSTS="127.0.0.1,localhost"
export SECURE_SSL_REDIRECT=0 SECURE_HSTS_SECONDS=0
export API_RATE_LIMIT=0 WEB_MAX_ACTIVE=64 WEB_MAX_QUEUE=256
export CELERY_BROKER_URL="filesystem://"
unset CELERY_RESULT_BACKEND NEO4J_URI DJANGO_SETTINGS_MODULE

echo "-- database $db: create, migrate, seed"
psql -q -X -v ON_ERROR_STOP=1 "$pg_url/postgres" -c "CREATE DATABASE \"$db\"" >/dev/null
db_created=1
$PY manage.py migrate --noinput >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }
token="$($PY manage.py sample_seed --workspace fuzz --admin fuzz-admin 2>"$work/seed.log")" \
  || { cat "$work/seed.log" >&2; exit 1; }

echo "-- gunicorn on $base"
.venv/bin/gunicorn config.wsgi --config gunicorn.conf.py --bind "127.0.0.1:${port}" --workers 2 \
  --timeout 60 --log-level warning >"$work/web.log" 2>&1 &
web=$!
up=""
for _ in $(seq 1 60); do
  if $PY -c "import urllib.request; urllib.request.urlopen('${base}/api/v1/health', timeout=1)" 2>/dev/null
  then
    up=1
    break
  fi
  kill -0 "$web" 2>/dev/null || break
  sleep 1
done
[ -n "$up" ] || { echo "the server did not answer on $base" >&2; exit 1; }

# The token's id, so the fuzzer never revokes the token it works with (scripts/fuzz_hooks.py).
FUZZ_TOKEN_ID="$($PY -c '
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
print(json.load(urllib.request.urlopen(request, timeout=10))["token"]["id"])
' "${base}/api/v1/me" "$token")"
export FUZZ_TOKEN_ID SCHEMATHESIS_HOOKS=scripts/fuzz_hooks.py

echo "-- schemathesis $(.venv/bin/st --version | awk '{print $NF}'): every operation, ${max_time} s"
started=$SECONDS
# schemathesis' cache of earlier failures and hypothesis' files would go into the checkout: each run
# starts afresh, in $work. Names in the address are the seeded model's or dataset's most of the time,
# so that requests reach past the lookup; the rest are generated like everything else.
cat >"$work/schemathesis.toml" <<'TOML'
[cache]
enabled = false

[dictionaries]
model = { values = ["scorer"] }
model_version = { values = ["1"] }
dataset = { values = ["credit"] }
dataset_version = { values = ["v1"] }

[[operations]]
include-path-regex = "^/api/v1/models/"
parameters = { "path.name" = { dictionary = "model", probability = 0.7 }, "path.version" = { dictionary = "model_version", probability = 0.7 } }

[[operations]]
include-path-regex = "^/api/v1/datasets/"
parameters = { "path.name" = { dictionary = "dataset", probability = 0.7 }, "path.version" = { dictionary = "dataset_version", probability = 0.7 } }
TOML
# One worker: with two, hypothesis parses lambdas' source from two threads at once, which Python 3.11's
# ast.parse can fail with "SystemError: AST constructor recursion depth mismatch" (a flaky run).
HYPOTHESIS_STORAGE_DIRECTORY="$work/hypothesis" \
  .venv/bin/st --config-file "$work/schemathesis.toml" run "${base}/api/schema/?format=json" \
  --header "Authorization: Bearer ${token}" \
  --checks not_a_server_error,response_schema_conformance,content_type_conformance \
  --max-time "$max_time" \
  --workers 1 \
  --request-timeout 30 \
  ${FUZZ_SEED:+--seed "$FUZZ_SEED"} \
  --report-dir "$work/report" \
  --generation-database none \
  --no-color
echo "-- no server errors and no schema violations in $((SECONDS - started)) s"
