"""Browser tests: Debian's Chromium driven by Playwright against the live test server. Skipped when
Chromium or Playwright is missing, unless E2E_REQUIRED is set (as CI does). A failing test leaves a
screenshot under var/e2e-screenshots/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "e2e-screenshots"


@pytest.fixture
def world(db):
    """income@1 with a fairness assessment and an explanation, and alice's open request (worlds.py)."""
    from tests.e2e.worlds import build_world

    return build_world()


@pytest.fixture
def reviewed_world(db):
    """income@1 in production; alice's open request to move income@2 there (worlds.py)."""
    from tests.e2e.worlds import build_reviewed_world

    return build_reviewed_world()


@pytest.fixture(autouse=True)
def _blocking_orm_beside_playwright(monkeypatch):
    """Playwright's sync API keeps an event loop running in this thread; the tests' own ORM calls
    are ordinary blocking calls between browser steps, which Django refuses while a loop runs unless
    told otherwise. Only for these tests, and only while the browser runs."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def chromium():
    """A browser per test: Playwright's event loop stops with it, before the database is flushed."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        if os.environ.get("E2E_REQUIRED"):
            pytest.fail(f"browser tests required but Chromium ({CHROMIUM}) or Playwright is missing")
        pytest.skip("Chromium or Playwright is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page_factory(chromium, live_server, request):
    """new_page() -> a page that records console errors and every request to another host."""
    pages = []

    def new_page():
        context = chromium.new_context()
        page = context.new_page()
        page.console_errors = []
        page.foreign_requests = []
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
        page.on("pageerror", lambda e: page.console_errors.append(str(e)))
        page.on("response", lambda r: r.status >= 400 and page.console_errors.append(f"{r.status} {r.url}"))
        page.on(
            "request",
            lambda r: (
                None
                if r.url.startswith((live_server.url, "data:", "blob:"))
                else page.foreign_requests.append(r.url)
            ),
        )
        pages.append(page)
        return page

    yield new_page
    failed = getattr(request.node, "rep_call", None)
    for index, page in enumerate(pages):
        if failed is not None and failed.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}-{index}.png"), full_page=True)
        page.context.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
