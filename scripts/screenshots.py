"""Screenshots of the real dashboard, taken with Chromium and Playwright against a running demo
(scripts/up.sh), at a laptop's width (1366 x 768) and a phone's (390 x 844):

    .venv/bin/python scripts/screenshots.py --url http://127.0.0.1:8000 \\
        --reviewer ravi:PASSWORD --auditor audrey:PASSWORD

Writes every page, whole, at both widths under var/screenshots/<width>/ (--all-out), and the guides'
images (docs/img/, --out): sections of the pages at the laptop's width and a few at the phone's.
Says on stderr which page scrolls sideways at either width (and exits 1 if one does).

Read-only: it opens pages and reviews nothing (a report the auditor already exported is shown; none
is asked for). Needs the dev extras (Playwright) and Debian's chromium (`apt-get install chromium`);
it never downloads a browser.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WIDTHS = {"laptop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}

# Guide images: (page name, file name, the element shot; None for the viewport)
GUIDE_LAPTOP = [
    ("inventory", "inventory", None),
    ("queue", "queue", None),
    ("request", "request-gate", "#gate"),
    ("request", "request-comparison", "#comparison"),
    ("request", "request-card", "#datasheet"),
    ("request", "request-fairness", "#fairness"),
    ("request", "request-explanations", "#explanations"),
    ("request", "request-provenance", "#provenance"),
    ("request", "request-reviews", "#reviews"),
    ("jobs", "jobs", None),
    ("lineage", "lineage-explorer", None),
    ("audit", "audit-log", None),
    ("reports", "reports", None),
]
GUIDE_PHONE = [("request", "phone-request", None), ("audit", "phone-audit-log", None)]


def login(page: Page, url: str, credentials: str) -> None:
    username, _, password = credentials.partition(":")
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    if "/accounts/login/" in page.url:
        raise SystemExit(f"could not sign in as {username}")


def settle(page: Page) -> None:
    """Wait until the page is idle and every chart (plotly) and the lineage graph have been drawn."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('div.chart[data-figure]'))"
        ".every(d => d.querySelector('.main-svg'))",
        timeout=30_000,
    )
    if page.locator("#lineage-graph").count():
        page.wait_for_selector("#lineage-graph[data-layout-ms]", timeout=30_000)


def written(path: Path) -> None:
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def pages(reviewer: Page, base: str) -> dict[str, str]:
    """name -> URL of every page a reviewer or an auditor reads, found by following the demo's links."""
    reviewer.goto(f"{base}/reviews/")
    request = reviewer.get_by_role("link", name="Review", exact=True).first.get_attribute("href")
    reviewer.goto(f"{base}/lineage/?q=income-classifier%402")
    reviewer.wait_for_load_state("networkidle")
    node = reviewer.locator("#found a").first.get_attribute("href")
    origin = base.split("/w/")[0]
    return {
        "inventory": f"{base}/",
        "queue": f"{base}/reviews/",
        "request": origin + request,
        "jobs": f"{base}/jobs/",
        "lineage": origin + node,
        "lineage-search": f"{base}/lineage/?q=adult",
    }


def auditor_pages(auditor: Page, base: str) -> dict[str, str]:
    auditor.goto(f"{base}/reports/")
    found = {
        "audit": f"{base}/audit/",
        "audit-filtered": f"{base}/audit/?action=promotion.*",
        "reports": auditor.url,
    }
    first = auditor.locator("table.reports tbody tr td a").first
    if first.count():
        found["report"] = base.split("/w/")[0] + first.get_attribute("href")
    return found


def shoot_all(browser: Browser, args, who: str, urls: dict[str, str], guide: dict[str, list]) -> list[str]:
    """Every page of urls at both widths; -> the pages that scrolled sideways."""
    wide = []
    for width, viewport in WIDTHS.items():
        page = browser.new_context(viewport=viewport).new_page()
        login(page, args.url, who)
        folder = args.all_out / width
        folder.mkdir(parents=True, exist_ok=True)
        for name, url in urls.items():
            page.goto(url)
            settle(page)
            scroll, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                wide.append(f"{name} at {width} ({scroll} px content in {inner} px)")
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
            written(folder / f"{name}.png")
            for page_name, file_name, selector in guide.get(width, []):
                if page_name != name:
                    continue
                target = args.out / f"{file_name}.png"
                if selector:
                    page.locator(selector).first.screenshot(path=str(target))
                else:
                    page.screenshot(path=str(target), full_page=False)
                written(target)
        page.context.close()
    return wide


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--workspace", default="demo")
    parser.add_argument("--reviewer", required=True, help="username:password of a compliance reviewer")
    parser.add_argument("--auditor", required=True, help="username:password of an auditor")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="the guides' images")
    parser.add_argument("--all-out", type=Path, default=ROOT / "var" / "screenshots", help="every page")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = f"{args.url.rstrip('/')}/w/{args.workspace}"

    guide_reviewer = {"laptop": GUIDE_LAPTOP, "phone": GUIDE_PHONE}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        finder = browser.new_context().new_page()
        login(finder, args.url, args.reviewer)
        reviewer_urls = pages(finder, base)
        finder.context.close()
        finder = browser.new_context().new_page()  # a fresh session: signed in, /accounts/login/ signs out
        login(finder, args.url, args.auditor)
        auditor_urls = auditor_pages(finder, base)
        finder.context.close()
        login_page = browser.new_context(viewport=WIDTHS["phone"]).new_page()
        login_page.goto(f"{args.url}/accounts/login/")
        (args.all_out / "phone").mkdir(parents=True, exist_ok=True)
        login_page.screenshot(path=str(args.all_out / "phone" / "login.png"), full_page=True)
        login_page.context.close()
        wide = shoot_all(browser, args, args.reviewer, reviewer_urls, guide_reviewer)
        wide += shoot_all(browser, args, args.auditor, auditor_urls, guide_reviewer)
        browser.close()
    for line in wide:
        print(f"scrolls sideways: {line}", file=sys.stderr)
    return 1 if wide else 0


if __name__ == "__main__":
    raise SystemExit(main())
