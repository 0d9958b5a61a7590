"""Every dashboard page, as people meet it: on a phone (390 x 844) no page scrolls sideways, on a
laptop (1366 x 768) too, and axe-core (from npm, injected only here) finds no critical or serious
accessibility violation on any page."""

from __future__ import annotations

from pathlib import Path

import pytest

from governance.models import Report
from lineage.models import Node
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.worlds import login
from tests.factories import make_member

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
WIDTHS = {"phone": (390, 844), "laptop": (1366, 768)}


def _paths(world) -> list[str]:
    from core.roles import Role

    report = Report.objects.create(workspace=world["workspace"], model_version=world["version"])
    node = Node.objects.get(key="income@1")
    make_member(world["workspace"], Role.AUDITOR, "audrey")
    return [
        "/",
        "/w/acme/",
        "/w/acme/reviews/",
        f"/w/acme/reviews/{world['request'].pk}/",
        "/w/acme/lineage/",
        "/w/acme/lineage/?q=adult",
        f"/w/acme/lineage/{node.pk}/",
        "/w/acme/audit/",
        "/w/acme/audit/?action=promotion.*",
        "/w/acme/jobs/",
        "/w/acme/reports/",
        "/w/acme/models/income/versions/1/reports/",
        "/w/acme/models/income/versions/1/technical-file/",
        "/w/acme/models/income/versions/1/technical-file/?export=html",
        f"/w/acme/reports/{report.pk}/",
    ]


def _settle(page) -> None:
    page.wait_for_load_state("networkidle")
    if page.locator("div.chart").count():
        page.wait_for_selector("div.chart[data-rendered=true]", timeout=20_000)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", list(WIDTHS))
def test_no_page_scrolls_sideways(world, live_server, chromium, width):
    from core.roles import Role

    admin = make_member(world["workspace"], Role.ADMIN, "root")
    paths = _paths(world)
    w, h = WIDTHS[width]
    context = chromium.new_context(viewport={"width": w, "height": h})
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
        login(page, live_server.url, admin)
        wide = {}
        for path in paths:
            page.goto(live_server.url + path)
            _settle(page)
            scroll, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                wide[path] = (scroll, inner)
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / f"wide-{width}-{len(wide)}.png"), full_page=True)
        assert wide == {}, wide
    finally:
        context.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_axe_finds_no_serious_violation_on_any_page(world, live_server, chromium):
    from core.roles import Role

    admin = make_member(world["workspace"], Role.ADMIN, "root")
    paths = _paths(world)
    # The Content-Security-Policy forbids inline scripts; axe is injected only in this test.
    context = chromium.new_context(bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        found = {}
        for path in ["/accounts/login/", *paths]:
            if path != "/accounts/login/":
                if "/accounts/login/" in page.url or path == paths[0]:
                    login(page, live_server.url, admin)
                page.goto(live_server.url + path)
            _settle(page)
            page.add_script_tag(path=str(AXE))
            violations = page.evaluate(
                """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                    .filter(v => v.impact === 'critical' || v.impact === 'serious')
                    .map(v => `${v.id} (${v.impact}): `
                        + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join('; '))"""
            )
            if violations:
                found[path] = violations
        assert found == {}, found
    finally:
        context.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_request_page_cold_transfers_under_one_and_a_half_megabytes(world, live_server, chromium):
    """An empty cache, every byte the page pulls in as Chrome counts it on the wire (headers and
    bodies). The test server sends static files uncompressed, so this bounds the deployed page
    (gzip, benchmarks/request_page.py) from above."""
    context = chromium.new_context()
    page = context.new_page()
    try:
        login(page, live_server.url, world["reviewer"])
        fresh = chromium.new_context(storage_state=context.storage_state())
        page = fresh.new_page()
        cdp = fresh.new_cdp_session(page)
        cdp.send("Network.enable")
        sizes: dict[str, int] = {}
        urls: dict[str, str] = {}
        cdp.on("Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"]))
        cdp.on("Network.loadingFinished", lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
        page.goto(f"{live_server.url}/w/acme/reviews/{world['request'].pk}/")
        _settle(page)
        assert page.locator("div.chart[data-rendered=true]").count() >= 1  # the charts did draw
        total = sum(sizes.values())
        assert any("plotly" in urls.get(i, "") for i in sizes), urls  # the script is counted
        assert total < 1_500_000, {urls.get(i, i): n for i, n in sorted(sizes.items(), key=lambda kv: -kv[1])}
        fresh.close()
    finally:
        context.close()
