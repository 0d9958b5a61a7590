"""Screenshots of the real dashboard for the guides (docs/img/), taken with Chromium and Playwright
against a running demo (scripts/up.sh):

    .venv/bin/python scripts/screenshots.py --url http://127.0.0.1:8000 \\
        --reviewer ravi:PASSWORD --auditor audrey:PASSWORD

Read-only: it opens pages and reviews nothing. Needs the dev extras (Playwright) and Debian's
chromium (`apt-get install chromium`); it never downloads a browser.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def login(page: Page, url: str, credentials: str) -> None:
    username, _, password = credentials.partition(":")
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    if "/accounts/login/" in page.url:
        raise SystemExit(f"could not sign in as {username}")


def charts_drawn(page: Page) -> None:
    """Wait until every chart on the page has been drawn by plotly."""
    page.wait_for_function(
        "Array.from(document.querySelectorAll('div.chart[data-figure]'))"
        ".every(d => d.querySelector('.main-svg'))",
        timeout=30_000,
    )


def shoot(page: Page, out: Path, name: str, selector: str | None = None) -> None:
    path = out / f"{name}.png"
    if selector:
        page.locator(selector).first.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=False)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--workspace", default="demo")
    parser.add_argument("--reviewer", required=True, help="username:password of a compliance reviewer")
    parser.add_argument("--auditor", required=True, help="username:password of an auditor")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = f"{args.url.rstrip('/')}/w/{args.workspace}"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        reviewer = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
        login(reviewer, args.url, args.reviewer)
        reviewer.goto(f"{base}/")
        shoot(reviewer, args.out, "inventory")
        reviewer.goto(f"{base}/reviews/")
        shoot(reviewer, args.out, "queue")
        href = reviewer.get_by_role("link", name="Review", exact=True).first.get_attribute("href")
        reviewer.goto(f"{args.url.rstrip('/')}{href}")
        reviewer.wait_for_load_state("networkidle")
        charts_drawn(reviewer)
        shoot(reviewer, args.out, "request-gate", "#gate")
        shoot(reviewer, args.out, "request-fairness", "#fairness")
        shoot(reviewer, args.out, "request-explanations", "#explanations")
        shoot(reviewer, args.out, "request-provenance", "#provenance")
        shoot(reviewer, args.out, "request-reviews", "#reviews")
        reviewer.goto(f"{base}/jobs/")
        shoot(reviewer, args.out, "jobs")
        reviewer.goto(f"{base}/lineage/?q=income-classifier%402")
        reviewer.locator("#found a").first.click()
        reviewer.wait_for_load_state("networkidle")
        charts_drawn(reviewer)
        shoot(reviewer, args.out, "lineage-explorer")

        auditor = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
        login(auditor, args.url, args.auditor)
        auditor.goto(f"{base}/audit/")
        shoot(auditor, args.out, "audit-log")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
