"""The web tier's front: an nginx configuration for serving gunicorn's sync workers (scripts/web.sh).

nginx holds every client connection (kept alive or not, slow or not), reads each request's body
whole before it passes the request on, and lets at most `max_conns` requests at a time through to
the workers; any other request is answered at once, by nginx, with 503, `Retry-After` and the same
problem document as the service's own admission control (core/admission.py). The health check and
static files take a separate way in with no such bound, so a load balancer's probe is never refused.

Why: under twice the gate endpoint's capacity, gunicorn's threaded workers with admission control
answered 0.75-0.86 of their capacity in the worst 5-second window (refusals and admitted requests
take turns on one Python lock per process); with nginx refusing in C and each admitted request served
by a process that does nothing else, at least 0.91 in 8 of 10 runs (docs/benchmarks.md, "Overload").
nginx's worker runs at a low priority (`priority`, nice 19 by default): clients that retry at once on
every 503 then slow nginx's refusals down instead of taking the CPU from the workers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse

from core.admission import RETRY_AFTER_SECONDS, refusal_problem
from core.api.errors import problem

# Bytes a multipart upload adds around the file it carries (boundaries, headers, other fields).
MULTIPART_OVERHEAD_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Front:
    listen: str  # nginx `listen` value: "127.0.0.1:8000", "8000", "[::]:8000"
    upstream: str  # where gunicorn listens: "unix:/path/web.sock" or "127.0.0.1:8001"
    max_conns: int  # requests at once passed to the workers
    prefix: str  # a directory nginx may write: its pid file and temporary files
    error_log: str
    access_log: str = "off"
    upstream_timeout: int = 120  # seconds; gunicorn's worker timeout or more
    user: str = ""  # the workers' user when nginx starts as root ("" : nginx's own default)
    priority: int = 0  # the workers' nice value (worker_priority): higher yields the CPU to gunicorn


def _quoted(text: str) -> str:
    """An nginx string in single quotes. `$` would start a variable, so none may appear."""
    if "$" in text or "\n" in text:
        raise ValueError(f"not allowed in an nginx string: {text!r}")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _problem_location(name: str, status: int, body: bytes, retry_after: bool) -> str:
    headers = [
        "add_header Cache-Control no-store always;",
        "add_header X-Content-Type-Options nosniff always;",
    ]
    if retry_after:
        headers.append(f"add_header Retry-After {RETRY_AFTER_SECONDS} always;")
    lines = [f"location @{name} {{", "default_type application/problem+json;", *headers]
    lines.append(f"return {status} {_quoted(body.decode())};")
    return "\n            ".join(lines) + "\n        }"


def render(front: Front) -> str:
    """The whole nginx.conf (for `nginx -p PREFIX -c FILE`; it runs in the foreground)."""
    if front.max_conns < 1:
        raise ValueError("max_conns must be at least 1")
    if not -20 <= front.priority <= 19:
        raise ValueError("priority must be a nice value, -20 to 19")
    for path in (front.prefix, front.error_log, front.access_log, front.upstream):
        if any(c in path for c in " ;{}'\"$\n"):
            raise ValueError(f"unsafe character in nginx path: {path!r}")
    health, static = reverse("health"), settings.STATIC_URL
    body_limit = settings.ARTIFACT_MAX_BYTES + MULTIPART_OVERHEAD_BYTES
    # The app's own refusal, without the path quoted back (nginx would insert it unescaped).
    unavailable = refusal_problem("")
    too_large = json.dumps(
        problem(
            status_code=413,
            title="Request body too large",
            detail=f"A request body may be at most {body_limit} bytes "
            "(ARTIFACT_MAX_BYTES and the form around it).",
        )
    ).encode()
    timed_out = json.dumps(
        problem(
            status_code=504,
            title="Gateway timeout",
            detail=f"The server did not answer within {front.upstream_timeout} seconds.",
        )
    ).encode()
    proxy = "proxy_pass http://{};"
    user = f"user {front.user};\n" if front.user else ""
    access_log = "off" if front.access_log == "off" else f"{front.access_log} mlgov buffer=64k flush=1s"
    return f"""# Written by `manage.py nginx_conf` (core/nginx.py); scripts/web.sh starts nginx with it.
{user}worker_processes 1;
worker_priority {front.priority};
daemon off;
pid {front.prefix}/nginx.pid;
error_log {front.error_log} warn;

events {{
    worker_connections 4096;
}}

http {{
    server_tokens off;
    # One line per request, with where nginx sent it and the answer it had from there (a request it
    # refused itself: upstream=502 from "mlgov", the bounded group; a worker that could not be
    # reached: 502 from the socket), and the times of the whole request and of the worker.
    log_format mlgov '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                     '"$http_referer" "$http_user_agent" upstream=$upstream_status '
                     'from=$upstream_addr request_time=$request_time '
                     'upstream_time=$upstream_response_time';
    access_log {access_log};
    client_body_temp_path {front.prefix}/client_body;
    proxy_temp_path {front.prefix}/proxy;
    fastcgi_temp_path {front.prefix}/fastcgi;
    uwsgi_temp_path {front.prefix}/uwsgi;
    scgi_temp_path {front.prefix}/scgi;
    default_type application/octet-stream;

    # At most max_conns requests at once reach the workers; past that nginx answers 502 at once,
    # turned into the 503 below (open-source nginx has no queue for an upstream, by design here).
    upstream mlgov {{
        server {front.upstream} max_conns={front.max_conns};
    }}
    # The health check and static files: never refused.
    upstream mlgov_exempt {{
        server {front.upstream};
    }}

    server {{
        listen {front.listen};
        keepalive_timeout 75s;
        keepalive_requests 10000;
        client_max_body_size {body_limit};
        client_body_timeout 60s;
        send_timeout 60s;

        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_connect_timeout 5s;
        proxy_read_timeout {front.upstream_timeout}s;
        proxy_send_timeout {front.upstream_timeout}s;
        proxy_next_upstream off;
        proxy_max_temp_file_size 4096m;

        error_page 502 503 = @unavailable;
        error_page 504 = @timed_out;
        error_page 413 = @too_large;

        location / {{
            {proxy.format("mlgov")}
            # nginx logs each request it refuses past max_conns ("no live upstreams") as an error:
            # under an attack gigabytes an hour, and its disk writes slow everything else. Here only
            # what is critical; the access log shows refusals and unreachable workers (upstream=).
            error_log {front.error_log} crit;
        }}
        location = {health} {{
            {proxy.format("mlgov_exempt")}
        }}
        location {static} {{
            {proxy.format("mlgov_exempt")}
        }}
        {_problem_location("unavailable", 503, unavailable, retry_after=True)}
        {_problem_location("timed_out", 504, timed_out, retry_after=False)}
        {_problem_location("too_large", 413, too_large, retry_after=False)}
    }}
}}
"""
