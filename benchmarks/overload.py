"""Overload: the gate endpoint offered twice its capacity, against the service's web tier as
scripts/web.sh serves it (nginx in front of gunicorn's sync workers: `nginx-sync`), against gunicorn
alone with its own admission control (gunicorn.conf.py's threaded workers: `gthread-admission`), and
against the configuration before both (2 sync workers as scripts/up.sh ran them, no admission
control: the baseline), on PostgreSQL.

    python benchmarks/overload.py --database postgres://postgres@127.0.0.1:5432/mlgov_overload
    python benchmarks/overload.py --quick      # capacity over 4 and 8 connections, 1.5 s each; 8 s overload

RESULT lines: `overload_*` for nginx-sync (skipped with a note when nginx is not installed),
`overload_gthread_*` for gunicorn alone.

For each configuration, on a fresh server (DJANGO_ENV=production, persistent database connections,
the workspace and token of benchmarks/gate_load.py's seed):

1. Capacity: after a warm-up (`--warmup-seconds`, 10 s of the largest closed loop), closed loops of
   4, 8 and 16 keep-alive clients (`--capacity-connections`) sending
   gate checks back to back for `--capacity-seconds` each; capacity = the most answers with 200 per
   second among them.
2. Overload: open loop at twice that capacity for `--seconds` over `--connections` keep-alive
   connections (requests due on a fixed schedule, whatever the answers' speed, each sent on the next
   free connection), while another connection asks for /api/v1/health five times a second. A client
   gives up on a request `--client-timeout` seconds after it was due (as an impatient caller
   would): late answers do not count as answered.

With `--machine-seconds S` (at least 10), before anything else: one process per core hashing for S
seconds, reported as the smallest 5-second window over the best 10 seconds: how much the machine's
own CPU speed wanders (on a shared host it does, and no server on it is steadier). With
`--steady-seconds S`, between the two: the best of those closed loops again for S seconds, no
overload, reported as its smallest 5-second window over the capacity: how much the server's own rate
wanders on this machine, a floor under what the overload run's windows can show.

With `--speed-probe` (Linux, root: it needs real-time priority): one process per core, pinned to it
at real-time priority, times a fixed piece of hashing every 20 ms throughout (about 2% of each core),
so it runs whenever it is due, whatever else is running, and its rate is the core's speed at that
moment. Each window of the steady and overload runs is then also reported over the machine's speed
in it, relative to its speed during the capacity's closed loop: what the server answered of what
it could have answered at that speed. On a shared host the speed wanders by 20% from one second to
the next and the answers follow it (their correlation per window is printed).

With `--refusal-cost`, only this, on two fresh servers of one worker process each: both admission
places and the one place in line held by sign-ins whose body never arrives, so every gate check is
refused; closed loops of 1, 4 and 16 keep-alive clients for `--refusal-seconds` each. Reported: the
worker's CPU per refusal and its refusals per second, with the event loop answering them
(WEB_EVENT_LOOP_REFUSALS, the default) against the baseline of a pool thread answering each.

With `--storm`, only this, on one server of scripts/web.sh with nginx: clients that retry at once on
a 503 (ignoring Retry-After), `--storm-connections` closed loops, far more than nginx passes on, so
nginx refuses thousands of requests a second. In `--storm-rounds` rounds, with nginx's worker at
WEB_FRONT_PRIORITY's nice value and at 0 in turn (the baseline; changed on the running worker, which
needs root): the gate's answers with 200 per second during the storm over those of the round's closed
loops of 4 connections (one before each storm). The load generator runs on the same machine at
nice 0 and takes some of the CPU itself (a remote storm would not), so this is a floor.

Reported per configuration: answers with 200 per second, the smallest 5-second window's rate as a
fraction of the capacity (target >= 0.9), p99 of the time to a 503 from when it was due (target
<= 50 ms) and p99 of the health check (target <= 100 ms; a probe unanswered after 10 s counts as
10 s).

The load generator shares the machine's CPUs with the server (and PostgreSQL). To take little of
them, it writes prepared request bytes to raw sockets and reads answers by their Content-Length
without a full HTTP parser: one thread per connection, mostly blocked in the kernel; it reports
the share of one core it used (about 2% at 200 requests/s on the 2-core machine). The API's
per-token rate limit is off (API_RATE_LIMIT=0): one CI token sends all the load, and the limit is
not what is measured here.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.gate_load import prepare  # noqa: E402
from tests.workers import descendants  # noqa: E402

GATE_PATH = "/api/v1/models/income/versions/1/gate"
TARGET_FRACTION, TARGET_503_P99_MS, TARGET_HEALTH_P99_MS = 0.9, 50.0, 100.0
WINDOW_SECONDS = 5
HEALTH_INTERVAL = 0.2
HEALTH_TIMEOUT = 10.0  # a probe without an answer by then counts as this long

# name -> (description, gunicorn arguments after the application, extra environment); NGINX: the
# command is scripts/web.sh with nginx in front (WEB_FRONT=nginx), not gunicorn alone.
NGINX = "nginx-sync"
CONFIGURATIONS = {
    NGINX: (
        "scripts/web.sh: nginx in front of gunicorn's sync workers on a Unix socket, at most 3 "
        "requests per worker passed on, the rest refused by nginx",
        [],
        {"WEB_FRONT": "nginx"},
    ),
    "gthread-admission": (
        "gunicorn.conf.py alone: threaded workers, admission control (WEB_* defaults)",
        [],
        {},
    ),
    "sync-2-workers": (
        "the configuration before: 2 sync workers, gunicorn's default backlog, no admission control",
        ["--worker-class", "sync", "--threads", "1", "--workers", "2", "--backlog", "2048"],
        {"WEB_ADMISSION_CONTROL": "0"},
    ),
}
BASELINE = "sync-2-workers"


def gate_request(token: str) -> bytes:
    body = b'{"stage": "production"}'
    return (
        f"POST {GATE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


HEALTH_REQUEST = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class Connection:
    """One keep-alive HTTP/1.1 connection on a raw socket, reopened when the server closes it."""

    def __init__(self, port: int):
        self.port = port
        self.sock: socket.socket | None = None

    def exchange(self, request: bytes, timeout: float) -> int:
        """Send `request` and read the answer; its status, or 0 when none came within `timeout`."""
        try:
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.settimeout(timeout)
            self.sock.sendall(request)
            status, close = self._read(self.sock)
        except OSError:
            status, close = 0, True
        if close:
            self.close()
        return status

    @staticmethod
    def _read(sock: socket.socket) -> tuple[int, bool]:
        data = b""
        while (end := data.find(b"\r\n\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                return 0, True
            data += chunk
        head = data[:end].lower() + b"\r\n"
        start = head.find(b"\r\ncontent-length:") + 17  # every answer here carries one
        length = int(head[start : head.find(b"\r\n", start)])
        missing = length - (len(data) - end - 4)
        while missing > 0:
            chunk = sock.recv(65536)
            if not chunk:
                return 0, True
            missing -= len(chunk)
        return int(head[9:12]), b"\r\nconnection: close" in head

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@dataclass
class Outcomes:
    """What each request got: (due, answered at, status), times from the run's start."""

    start: float
    records: list[tuple[float, float, int]] = field(default_factory=list)


def closed_loop(port: int, request: bytes, seconds: float, connections: int) -> Outcomes:
    outcomes = Outcomes(start=time.perf_counter())
    end = outcomes.start + seconds

    def client() -> None:
        conn = Connection(port)
        while (sent := time.perf_counter()) < end:
            status = conn.exchange(request, timeout=30)
            outcomes.records.append((sent - outcomes.start, time.perf_counter() - outcomes.start, status))
        conn.close()

    run_threads(client, connections)
    return outcomes


def open_loop(
    port: int, request: bytes, rate: float, seconds: float, connections: int, client_timeout: float
) -> tuple[Outcomes, list[float]]:
    """`rate` requests/s for `seconds`, and health checks meanwhile; (outcomes, health latencies)."""
    outcomes = Outcomes(start=time.perf_counter() + 0.2)
    total = int(rate * seconds)
    lock = threading.Lock()
    next_index = [0]
    health: list[float] = []
    finished = threading.Event()

    def client() -> None:
        conn = Connection(port)
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= total:
                break
            due = outcomes.start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            left = due + client_timeout - time.perf_counter()
            status = conn.exchange(request, timeout=left) if left > 0 else 0
            outcomes.records.append((due - outcomes.start, time.perf_counter() - outcomes.start, status))
        conn.close()

    def prober() -> None:
        conn = Connection(port)
        due = outcomes.start
        while not finished.is_set():
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            answered = conn.exchange(HEALTH_REQUEST, timeout=HEALTH_TIMEOUT) == 200
            health.append(time.perf_counter() - sent if answered else HEALTH_TIMEOUT)
            due += HEALTH_INTERVAL
        conn.close()

    probe = threading.Thread(target=prober)
    probe.start()
    run_threads(client, connections)
    finished.set()
    probe.join()
    return outcomes, health


def run_threads(target, count: int) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Figures:
    capacity: float
    offered: float
    per_second: list[int]
    window_fraction_min: float
    answered_fraction: float
    p99_503_ms: float
    p99_200_ms: float
    health_p99_ms: float
    statuses: Counter
    steady_window_min: float = math.nan  # --steady-seconds: the closed loop's smallest window / capacity
    steady_adjusted_min: float = math.nan  # --speed-probe: the same over the machine's speed
    window_adjusted_min: float = math.nan  # --speed-probe: the overload's smallest, likewise


def per_second_answered(outcomes: Outcomes, seconds: int) -> list[int]:
    """Answers with 200 in each second of a run, by when they arrived."""
    counts = [0] * seconds
    for _, done, status in outcomes.records:
        if status == 200 and 0 <= done < seconds:
            counts[int(done)] += 1
    return counts


def windows_of(per_second: list[int]) -> list[float]:
    """Mean answers per second in each whole WINDOW_SECONDS window."""
    return [
        sum(per_second[w : w + WINDOW_SECONDS]) / WINDOW_SECONDS
        for w in range(0, len(per_second) - WINDOW_SECONDS + 1, WINDOW_SECONDS)
    ]


def steady(port: int, request: bytes, args, connections: int, capacity: float) -> tuple[float, float, list]:
    """The server's own wander, without overload: a closed loop over the best capacity's connections
    for --steady-seconds; its smallest window as a fraction of the capacity (no server, however it
    handles overload, answers a steadier share of it than this while the machine wanders as much).
    (that fraction, the run's start, its windows)"""
    seconds = int(args.steady_seconds)
    run = closed_loop(port, request, seconds, connections)
    windows = windows_of(per_second_answered(run, seconds))
    print(
        f"#   closed loop over {connections} connections for {seconds} s, no overload: 5-second windows / "
        f"capacity {' '.join(f'{w / capacity:.2f}' for w in windows)}",
        flush=True,
    )
    return min(windows) / capacity, run.start, windows


def measure(name: str, port: int, token: str, args) -> Figures:
    request = gate_request(token)
    # Warm up for long enough: with 2 s, the same closed loop run after the capacity's answered up to
    # 25% more than it did (docs/benchmarks.md), so the capacity was measured on a server still warming.
    closed_loop(port, request, args.warmup_seconds, max(args.capacity_connections))
    probe = SpeedProbe() if args.speed_probe else None
    rates, spans = {}, {}
    for connections in args.capacity_connections:
        run = closed_loop(port, request, args.capacity_seconds, connections)
        rates[connections] = sum(1 for *_, status in run.records if status == 200) / args.capacity_seconds
        spans[connections] = (run.start, run.start + args.capacity_seconds)
    capacity = max(rates.values())
    best_connections = max(rates, key=lambda n: rates[n])
    print(
        f"# {name}: capacity {capacity:.1f} answers/s (closed loop, the best of "
        + ", ".join(f"{rate:.1f}/s over {n} connections" for n, rate in rates.items())
        + ")",
        flush=True,
    )
    steady_min, steady_start, steady_windows = math.nan, 0.0, []
    if args.steady_seconds:
        steady_min, steady_start, steady_windows = steady(port, request, args, best_connections, capacity)
    offered = 2 * capacity
    cpu = time.process_time()
    outcomes, health = open_loop(port, request, offered, args.seconds, args.connections, args.client_timeout)
    generator_cpu = (time.process_time() - cpu) / args.seconds
    seconds = int(args.seconds)
    per_second = per_second_answered(outcomes, seconds)
    windows = windows_of(per_second)
    steady_adjusted = overload_adjusted = math.nan
    if probe is not None:
        probe.finish()
    if probe is not None and probe.samples:
        capacity_speed = probe.speed(*spans[best_connections])
        if steady_windows:
            steady_adjusted = report_adjusted(
                "closed loop, no overload",
                steady_windows,
                capacity,
                steady_start,
                int(args.steady_seconds),
                probe,
                capacity_speed,
            )
        overload_adjusted = report_adjusted(
            "overload", windows, capacity, outcomes.start, seconds, probe, capacity_speed
        )
    latency = {
        code: [(done - due) * 1000 for due, done, status in outcomes.records if status == code]
        for code in (200, 503)
    }
    figures = Figures(
        capacity=capacity,
        offered=offered,
        per_second=per_second,
        window_fraction_min=min(windows) / capacity,
        answered_fraction=sum(per_second) / seconds / capacity,
        p99_503_ms=percentile(latency[503], 0.99),
        p99_200_ms=percentile(latency[200], 0.99),
        health_p99_ms=percentile(health, 0.99) * 1000,
        statuses=Counter(status for _, _, status in outcomes.records),
        steady_window_min=steady_min,
        steady_adjusted_min=steady_adjusted,
        window_adjusted_min=overload_adjusted,
    )
    print(
        f"# {name}: offered {offered:.1f}/s for {args.seconds:g} s over {args.connections} connections; "
        f"statuses {dict(figures.statuses)} (0: no answer within {args.client_timeout:g} s); "
        f"the load generator used {generator_cpu:.0%} of one core",
        flush=True,
    )
    for row in range(0, seconds, 15):
        print(f"#   answered/s from {row:>2} s: {' '.join(f'{n:4d}' for n in per_second[row : row + 15])}")
    print(
        f"#   5-second windows / capacity: {' '.join(f'{w / capacity:.2f}' for w in windows)}; "
        f"200 p50 {statistics.median(latency[200]) if latency[200] else math.nan:.1f} ms, "
        f"p99 {figures.p99_200_ms:.1f} ms; 503 p99 {figures.p99_503_ms:.1f} ms "
        f"({len(latency[503])} answers); health p50 {statistics.median(health) * 1000:.1f} ms, "
        f"p99 {figures.health_p99_ms:.1f} ms ({len(health)} probes)",
        flush=True,
    )
    return figures


@contextmanager
def gunicorn_running(args, extra_args: list[str], extra_env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """A fresh gunicorn of the project's gunicorn.conf.py on --port (DJANGO_ENV=production, the
    benchmark's database), answering its health check."""
    env = {
        **os.environ,
        "DATABASE_URL": args.database,
        "DJANGO_ENV": "production",
        "SECRET_KEY": "bench-" + "x" * 60,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DB_CONN_MAX_AGE": "60",
        "GATE_SIGNING_KEY_FILE": str(Path(tempfile.mkdtemp()) / "key"),
        "API_RATE_LIMIT": "0",
        **extra_env,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)  # prepare() set the local settings for the seed
    log = Path(tempfile.mkdtemp()) / "gunicorn.log"
    if env.get("WEB_FRONT") == "nginx":
        command = ["bash", "scripts/web.sh"]
        env.update(
            WEB_BIND=f"127.0.0.1:{args.port}",
            PYTHON=sys.executable,
            MLGOV_VAR_DIR=str(log.parent),
            WEB_ACCESS_LOG="off",
        )
    else:
        command = [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "gunicorn.conf.py", *extra_args]
        command += ["--bind", f"127.0.0.1:{args.port}", "--log-level", "warning", "--no-control-socket"]
    with open(log, "w") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        probe = Connection(args.port)
        for _ in range(150):
            if probe.exchange(HEALTH_REQUEST, timeout=2) == 200:
                break
            if server.poll() is not None:
                raise SystemExit(f"gunicorn did not start; see {log}")
            time.sleep(0.2)
        else:
            raise SystemExit(f"gunicorn did not start; see {log}")
        probe.close()
        yield server
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def serve(name: str, args, token: str) -> Figures:
    description, extra_args, extra_env = CONFIGURATIONS[name]
    print(f"# {name}: {description}", flush=True)
    with gunicorn_running(args, extra_args, extra_env):
        return measure(name, args.port, token, args)


def held_sign_in(port: int) -> socket.socket:
    """A sign-in whose body never finishes arriving: it holds an admission place (or its place in
    line) for as long as the socket stays open."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: csrftoken=" + b"a" * 32 + b"\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername="
    )
    return sock


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def refusal_cost(args, token: str) -> dict[str, tuple[float, float]]:
    """--refusal-cost: one worker process whose two places and one place in line are held by
    sign-ins that never finish, so every gate check is refused; closed loops of 1, 4 and 16
    keep-alive clients for --refusal-seconds each. Per way of refusing: (worker CPU per refusal in
    microseconds, refusals per second), over all the loops."""
    limits = {
        "WEB_WORKERS": "1",
        "WEB_MAX_ACTIVE": "2",
        "WEB_MAX_QUEUE": "1",
        "WEB_QUEUE_TIMEOUT_MS": "600000",
    }
    request = gate_request(token)
    figures = {}
    for name, switch in (("event-loop", "1"), ("pool-thread", "0")):
        with gunicorn_running(args, [], {**limits, "WEB_EVENT_LOOP_REFUSALS": switch}) as server:
            (worker,) = map(int, Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split())
            closed_loop(args.port, request, 1, 2)  # warm
            holders = [held_sign_in(args.port) for _ in range(3)]
            time.sleep(0.5)
            refused, others, used, elapsed = 0, 0, 0.0, 0.0
            for connections in (1, 4, 16):
                cpu, started = process_cpu_seconds(worker), time.perf_counter()
                run = closed_loop(args.port, request, args.refusal_seconds, connections)
                used += process_cpu_seconds(worker) - cpu
                elapsed += time.perf_counter() - started
                refused += sum(1 for *_, status in run.records if status == 503)
                others += sum(1 for *_, status in run.records if status != 503)
            for sock in holders:
                sock.close()
        if others or not refused:
            raise SystemExit(f"{name}: {others} answers other than 503 while every place was held")
        figures[name] = (used / refused * 1e6, refused / elapsed)
        print(
            f"# refusals in the {name}: {refused / elapsed:.0f} a second from one worker, "
            f"{used / refused * 1e6:.0f} us of its CPU each ({used / elapsed:.2f} of a core)",
            flush=True,
        )
    return figures


def storm(args, token: str) -> dict[int, float]:
    """--storm: {nginx worker's nice value: mean over the rounds of (200s per second during the
    storm / 200s per second of the round's closed loops of 4)}. Each round measures both values, in
    turn first, each a closed loop of 4 connections and then the storm."""
    request = gate_request(token)
    fractions: dict[int, list[float]] = {}

    def rate(run: Outcomes, status: int = 200) -> float:
        return sum(1 for *_, got in run.records if got == status) / args.storm_seconds

    with gunicorn_running(args, [], CONFIGURATIONS[NGINX][2]) as server:
        (worker,) = [
            pid
            for pid in descendants(server.pid)
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"nginx: worker")
        ]
        configured = os.getpriority(os.PRIO_PROCESS, worker)
        closed_loop(args.port, request, args.warmup_seconds, 4)
        for round_ in range(args.storm_rounds):
            values = (configured, 0) if configured else (0,)
            before, during = {}, {}
            for nice in values if round_ % 2 == 0 else values[::-1]:
                try:
                    os.setpriority(os.PRIO_PROCESS, worker, nice)
                except PermissionError:
                    raise SystemExit("--storm: setting nginx's priority back to 0 needs root") from None
                before[nice] = closed_loop(args.port, request, args.storm_seconds, 4)
                during[nice] = closed_loop(args.port, request, args.storm_seconds, args.storm_connections)

            reference = statistics.mean(rate(run) for run in before.values())
            for nice in values:
                fractions.setdefault(nice, []).append(rate(during[nice]) / reference)
                print(
                    f"# storm round {round_ + 1}, nginx at nice {nice}: {rate(before[nice]):.0f}/s answered "
                    f"before, {rate(during[nice]):.0f}/s during the storm of {args.storm_connections} "
                    f"connections ({rate(during[nice], 503):.0f} refusals/s)",
                    flush=True,
                )
    return {nice: statistics.mean(values) for nice, values in fractions.items()}


def _hashes_per_second(seconds: int, out) -> None:
    """Count SHA-256 hashes of 1 KB, second by second (one core's plain CPU speed); put the list."""
    block, counts, count = b"x" * 1024, [], 0
    mark = time.perf_counter() + 1
    while len(counts) < seconds:
        for _ in range(1000):
            hashlib.sha256(block).digest()
        count += 1000
        if time.perf_counter() >= mark:
            counts.append(count)
            count, mark = 0, mark + 1
    out.put(counts)


PROBE_HASHES, PROBE_INTERVAL = 150, 0.02


def _probe_speed(core: int, stop, out) -> None:
    """Hashes per second of PROBE_HASHES hashes of 1 KB, every PROBE_INTERVAL s, at real-time
    priority on `core`; put [(perf_counter, rate)], or None without the right to that priority."""
    os.sched_setaffinity(0, {core})
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except PermissionError:
        out.put(None)
        return
    block, samples = b"x" * 1024, []
    while not stop.is_set():
        started = time.perf_counter()
        for _ in range(PROBE_HASHES):
            hashlib.sha256(block).digest()
        samples.append((started, PROBE_HASHES / (time.perf_counter() - started)))
        time.sleep(PROBE_INTERVAL)
    out.put(samples)


class SpeedProbe:
    """The machine's CPU speed over a run (see --speed-probe): one real-time process per core."""

    def __init__(self):
        self.stop = multiprocessing.Event()
        self.out: multiprocessing.Queue = multiprocessing.Queue()
        cores = sorted(os.sched_getaffinity(0))
        self.processes = [
            multiprocessing.Process(target=_probe_speed, args=(core, self.stop, self.out)) for core in cores
        ]
        for process in self.processes:
            process.start()
        self.samples: list[tuple[float, float]] | None = None

    def finish(self) -> None:
        self.stop.set()
        runs = [self.out.get() for _ in self.processes]
        for process in self.processes:
            process.join()
        if any(run is None for run in runs):
            print("# --speed-probe: real-time priority refused (run as root); no speed figures", flush=True)
            return
        self.samples = sorted(sample for run in runs for sample in run)

    def speed(self, start: float, end: float) -> float:
        """The median rate of the samples taken between two perf_counter times."""
        rates = [rate for at, rate in self.samples or [] if start <= at < end]
        return statistics.median(rates) if rates else math.nan

    def windows(self, start: float, seconds: int) -> list[float]:
        """The speed in each WINDOW_SECONDS window of a run that began at `start`."""
        return [
            self.speed(start + w, start + w + WINDOW_SECONDS)
            for w in range(0, seconds - WINDOW_SECONDS + 1, WINDOW_SECONDS)
        ]


def adjusted_windows(
    windows: list[float], capacity: float, speeds: list[float], capacity_speed: float
) -> list[float]:
    """Each window's answers over the capacity, divided by its speed over the capacity's speed."""
    return [(rate / capacity) / (speed / capacity_speed) for rate, speed in zip(windows, speeds, strict=True)]


def correlation(xs: list[float], ys: list[float]) -> float:
    """Pearson's r; nan under three windows (two points always lie on a line)."""
    if len(xs) < 3:
        return math.nan
    try:
        return statistics.correlation(xs, ys)
    except statistics.StatisticsError:  # fewer than two windows, or one side constant
        return math.nan


def report_adjusted(label: str, windows, capacity, start, seconds, probe, capacity_speed) -> float:
    speeds = probe.windows(start, seconds)
    adjusted = adjusted_windows(windows, capacity, speeds, capacity_speed)
    print(
        f"#   {label}: machine speed per window / during the capacity's loop "
        f"{' '.join(f'{v / capacity_speed:.2f}' for v in speeds)} (correlation with the answers "
        f"{correlation(windows, speeds):.2f}); answered / capacity over that "
        f"{' '.join(f'{v:.2f}' for v in adjusted)}",
        flush=True,
    )
    return min(adjusted)


def machine_wander(seconds: int) -> float:
    """The machine's own wander, before any server starts: one hashing process per core for
    `seconds`; the smallest 5-second window over the best 10-second one (the capacity's span), the
    lowest of the cores. A shared host's CPU speed moves; nothing running on it is steadier."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    out: multiprocessing.Queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_hashes_per_second, args=(seconds, out)) for _ in range(cores)]
    for worker in workers:
        worker.start()
    runs = [out.get() for _ in workers]
    for worker in workers:
        worker.join()
    fractions = []
    for per_second in runs:
        best = max(sum(per_second[i : i + 10]) / 10 for i in range(len(per_second) - 9))
        fractions.append(min(windows_of(per_second)) / best)
    print(
        f"# the machine alone: {cores} hashing processes for {seconds} s; smallest 5-second window over "
        f"the best 10 seconds, per core: {' '.join(f'{f:.2f}' for f in fractions)}",
        flush=True,
    )
    return min(fractions)


def ratio_of(numerator: float, denominator: float) -> float:
    """numerator / denominator; inf where the denominator is 0 (a baseline that answered nothing)."""
    if denominator == 0:
        return math.inf
    return numerator / denominator


def result(name: str, value: float, unit: str, baseline: str, ratio: float) -> None:
    print(f"RESULT {name} {value:.4g} {unit} baseline={baseline} ratio={ratio:.3g}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/mlgov_overload")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    parser.add_argument(
        "--capacity-connections",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[4, 8, 16],
        help="the closed loops' numbers of connections (capacity: the best of them)",
    )
    parser.add_argument("--warmup-seconds", type=float, default=10.0)
    parser.add_argument(
        "--machine-seconds",
        type=int,
        default=0,
        help="first, this long: how much the machine's own CPU speed wanders (one hashing process per core)",
    )
    parser.add_argument(
        "--steady-seconds",
        type=float,
        default=0.0,
        help="also run the best closed loop this long without overload, for how much the server wanders",
    )
    parser.add_argument(
        "--speed-probe",
        action="store_true",
        help="time a fixed piece of work on each core at real-time priority throughout (root, Linux)",
    )
    parser.add_argument(
        "--refusal-cost",
        action="store_true",
        help="only this: the worker's CPU per 503, answered by the event loop and by a pool thread",
    )
    parser.add_argument("--refusal-seconds", type=float, default=5.0)
    parser.add_argument(
        "--storm",
        action="store_true",
        help="only this: the gate's answers while clients retry at once on 503s, nginx niced and not",
    )
    parser.add_argument("--storm-connections", type=int, default=16)
    parser.add_argument("--storm-seconds", type=float, default=6.0)
    parser.add_argument("--storm-rounds", type=int, default=4)
    parser.add_argument("--client-timeout", type=float, default=2.0)
    parser.add_argument("--port", type=int, default=8350)
    parser.add_argument("--only", choices=list(CONFIGURATIONS), help="measure one configuration")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.capacity_seconds, args.warmup_seconds = 8.0, 1.5, 0.5
        args.capacity_connections = [4, 8]
        args.refusal_seconds = 1.0
        args.storm_seconds, args.storm_rounds = 2.0, 1
    machine = machine_wander(args.machine_seconds) if args.machine_seconds >= 10 else math.nan
    token = prepare(args.database)
    if args.storm:
        if shutil.which("nginx") is None:
            raise SystemExit("--storm: nginx is not installed (apt-get install nginx)")
        fractions = storm(args, token)
        configured = max(fractions)
        result(
            "overload_storm_answered_fraction",
            fractions[configured],
            "fraction",
            "nginx-nice-0",
            ratio_of(fractions[configured], fractions[0]),
        )
        return
    if args.refusal_cost:
        costs = refusal_cost(args, token)
        (ours_cpu, ours_rate), (base_cpu, base_rate) = costs["event-loop"], costs["pool-thread"]
        result("overload_refusal_cpu", ours_cpu, "us", "pool-thread", ratio_of(base_cpu, ours_cpu))
        result("overload_refusals_one_worker", ours_rate, "requests/s", "pool-thread", ours_rate / base_rate)
        return
    names = [args.only] if args.only else list(CONFIGURATIONS)
    if NGINX in names and shutil.which("nginx") is None:
        print(f"# {NGINX}: skipped, nginx is not installed (apt-get install nginx)", flush=True)
        names.remove(NGINX)
    figures = {name: serve(name, args, token) for name in names}
    print(f"# load average after the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not math.isnan(machine):
        result(
            "overload_machine_window_min",
            machine,
            "fraction",
            f"target-{TARGET_FRACTION:g}",
            machine / TARGET_FRACTION,
        )
    base = figures.get(BASELINE)
    # The served configuration's figures are overload_*; gunicorn alone's, overload_gthread_*.
    for name, prefix in ((NGINX, "overload"), ("gthread-admission", "overload_gthread")):
        if name in figures:
            report(prefix, figures[name], base)


def report(prefix: str, ours: Figures, base: Figures | None) -> None:
    """RESULT lines of one configuration, against the baseline's run or, without it, the targets."""
    target = f"target-{TARGET_FRACTION:g}"
    for name, value in (
        ("closed_loop_window_min", ours.steady_window_min),
        ("closed_loop_window_min_speed_adjusted", ours.steady_adjusted_min),
        ("answered_fraction_min_speed_adjusted", ours.window_adjusted_min),
    ):
        if not math.isnan(value):
            result(f"{prefix}_{name}", value, "fraction", target, value / TARGET_FRACTION)
    result(
        f"{prefix}_capacity",
        ours.capacity,
        "requests/s",
        BASELINE if base else "none",
        ratio_of(ours.capacity, base.capacity) if base else math.nan,
    )
    result(
        f"{prefix}_answered_fraction_min",
        ours.window_fraction_min,
        "fraction",
        BASELINE if base else target,
        ratio_of(ours.window_fraction_min, base.window_fraction_min)
        if base
        else ours.window_fraction_min / TARGET_FRACTION,
    )
    result(
        f"{prefix}_503_p99",
        ours.p99_503_ms,
        "ms",
        f"target-{TARGET_503_P99_MS:g}ms",
        ratio_of(TARGET_503_P99_MS, ours.p99_503_ms),
    )
    result(
        f"{prefix}_health_p99",
        ours.health_p99_ms,
        "ms",
        BASELINE if base else f"target-{TARGET_HEALTH_P99_MS:g}ms",
        ratio_of(base.health_p99_ms if base else TARGET_HEALTH_P99_MS, ours.health_p99_ms),
    )


if __name__ == "__main__":
    main()
