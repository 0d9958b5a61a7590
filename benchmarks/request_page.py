"""The request page as a reviewer's browser loads it, cold (an empty cache) and warm, from a real
gunicorn on loopback, in Debian's Chromium through Playwright:

    python benchmarks/request_page.py            # 7 cold and 7 warm loads per configuration
    python benchmarks/request_page.py --quick    # 2 of each

Two configurations serve the same page, built by tests/factories.py in a fresh SQLite database (a
fairness assessment and an explanation, so all four charts draw):

- `now`: scripts/up.sh's setup. `collectstatic` has run: static files under content-hashed names,
  gzip copies, a year's immutable caching (WhiteNoise), plotly.js's basic bundle (1.07 MB).
- `before` (the baseline): the full plotly.js build (4.85 MB) under the same name, unhashed,
  uncompressed, `Cache-Control: max-age=0` (benchmarks/settings_before.py), as the page was served
  before this change.

Per configuration: the bytes the page transferred (Chrome's encodedDataLength summed over every
response: headers and bodies, as sent over the wire), and the time from navigation to every chart
drawn (what a reviewer waits for), median of the runs. Targets (issue 21): a cold load transfers
under 1.5 MB and draws in under 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TARGET_BYTES, TARGET_MS = 1.5e6, 1000.0
CHARTS_DRAWN = (
    "Array.from(document.querySelectorAll('div.chart[data-figure]')).length > 0 && "
    "Array.from(document.querySelectorAll('div.chart[data-figure]')).every(d => d.querySelector('.main-svg'))"
)


def seed(var_dir: Path) -> tuple[str, str]:
    """A fresh SQLite database with alice's open request; -> (request path, reviewer username)."""
    os.environ.update(DJANGO_SETTINGS_MODULE="config.settings.local", MLGOV_VAR_DIR=str(var_dir))
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    from core.roles import Role
    from explain.models import JobKind
    from tests import factories as f

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    admin = f.make_user("admin")
    workspace = f.make_workspace("acme", admin=admin)
    author = f.make_member(workspace, Role.DATA_SCIENTIST, "alice")
    reviewer = f.make_member(workspace, Role.COMPLIANCE_REVIEWER, "bob")
    version = f.make_model_version(workspace, author, "income", "1", run="train-1", job=None)
    f.make_job(version, JobKind.FAIRNESS)
    f.make_job(version, JobKind.EXPLANATION)
    f.make_policy(workspace, admin, "prod")
    request = f.make_promotion_request(version, author, "production", comment="please")
    return f"/w/acme/reviews/{request.pk}/", reviewer.username


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, var_dir: Path, settings: str, extra_env: dict[str, str]):
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MLGOV_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": settings, **extra_env}
        env.pop("DATABASE_URL", None)
        env["PYTHONPATH"] = str(ROOT)
        self.log = var_dir / f"gunicorn-{name}.log"
        command = [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "gunicorn.conf.py"]
        command += ["--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", "--no-control-socket"]
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        for _ in range(150):
            try:
                urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=2)  # noqa: S310 (loopback)
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.2)
        raise SystemExit(f"gunicorn ({name}) did not start; see {self.log}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def load(context, url: str) -> tuple[int, float, dict[str, float]]:
    """Open url in a new tab of context; -> (bytes transferred, ms until every chart is drawn, the
    navigation's own timings: first byte of the page and DOMContentLoaded, in ms)."""
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    transferred = [0]
    cdp.on(
        "Network.loadingFinished",
        lambda e: transferred.__setitem__(0, transferred[0] + e["encodedDataLength"]),
    )
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_function(CHARTS_DRAWN, timeout=60_000, polling=10)
    elapsed = (time.perf_counter() - start) * 1000
    page.wait_for_load_state("networkidle")
    timing = page.evaluate(
        "(() => { const n = performance.getEntriesByType('navigation')[0];"
        " return {first_byte: n.responseStart, dom_ready: n.domContentLoadedEventEnd}; })()"
    )
    page.close()
    return transferred[0], elapsed, timing


def measure(browser, server: Server, path: str, username: str, runs: int) -> dict[str, float]:
    from tests.factories import PASSWORD

    signin = browser.new_context()
    page = signin.new_page()
    page.goto(f"{server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    state = signin.storage_state()  # the session cookie, and nothing of the cache
    signin.close()
    cold_bytes, cold_ms, warm_bytes, warm_ms, first_byte, dom_ready = [], [], [], [], [], []
    for _ in range(runs):
        context = browser.new_context(storage_state=state, viewport={"width": 1366, "height": 768})
        b, ms, timing = load(context, server.url + path)
        cold_bytes.append(b)
        cold_ms.append(ms)
        first_byte.append(timing["first_byte"])
        dom_ready.append(timing["dom_ready"])
        b, ms, _ = load(context, server.url + path)  # the same browser, a second visit
        warm_bytes.append(b)
        warm_ms.append(ms)
        context.close()
    figures = {
        "cold_bytes": statistics.median(cold_bytes),
        "cold_ms": statistics.median(cold_ms),
        "warm_bytes": statistics.median(warm_bytes),
        "warm_ms": statistics.median(warm_ms),
    }
    print(
        f"# {server.name}: cold {figures['cold_bytes'] / 1e6:.3f} MB in {figures['cold_ms']:.0f} ms "
        f"(runs: {', '.join(f'{m:.0f}' for m in cold_ms)} ms; "
        f"first byte {statistics.median(first_byte):.0f} ms, "
        f"DOMContentLoaded {statistics.median(dom_ready):.0f} ms); "
        f"warm {figures['warm_bytes'] / 1e3:.1f} kB in {figures['warm_ms']:.0f} ms",
        flush=True,
    )
    return figures


def result(name: str, value: float, unit: str, baseline: str, ratio: float) -> None:
    print(f"RESULT {name} {value:.4g} {unit} baseline={baseline} ratio={ratio:.3g}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 loads of each kind per configuration")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
    args = parser.parse_args()
    runs = 2 if args.quick else args.runs

    work = Path(tempfile.mkdtemp(prefix="mlgov-request-page-"))
    var_dir = work / "var"
    before_static = work / "before-static" / "vendor" / "plotly"
    before_static.mkdir(parents=True)
    import plotly

    full = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    shutil.copyfile(full, before_static / "plotly-basic.min.js")
    path, username = seed(var_dir)
    print(f"# the page: {path}; baseline plotly build {full.stat().st_size / 1e6:.2f} MB", flush=True)

    from playwright.sync_api import sync_playwright

    configurations = {
        "now": ("config.settings.local", {}),
        "before": ("benchmarks.settings_before", {"BENCH_BEFORE_STATIC": str(work / "before-static")}),
    }
    figures = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        for name, (settings, extra_env) in configurations.items():
            server = Server(name, var_dir, settings, extra_env)
            try:
                figures[name] = measure(browser, server, path, username, runs)
            finally:
                server.stop()
        browser.close()
    now, before = figures["now"], figures["before"]
    print(
        f"# targets: cold transfer < {TARGET_BYTES / 1e6:.1f} MB "
        f"({'met' if now['cold_bytes'] < TARGET_BYTES else 'MISSED'}), "
        f"cold load < {TARGET_MS:.0f} ms ({'met' if now['cold_ms'] < TARGET_MS else 'MISSED'})",
        flush=True,
    )
    result(
        "request_page_cold_transfer",
        now["cold_bytes"] / 1e6,
        "MB",
        "before",
        before["cold_bytes"] / now["cold_bytes"],
    )
    result("request_page_cold_load", now["cold_ms"], "ms", "before", before["cold_ms"] / now["cold_ms"])
    result(
        "request_page_warm_transfer",
        now["warm_bytes"] / 1e3,
        "kB",
        "before",
        before["warm_bytes"] / now["warm_bytes"],
    )
    result("request_page_warm_load", now["warm_ms"], "ms", "before", before["warm_ms"] / now["warm_ms"])
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
