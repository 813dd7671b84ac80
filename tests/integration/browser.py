"""The web app in a real browser: Debian's Chromium (/usr/bin/chromium, never a browser
Playwright downloads) driven by Playwright for Python, axe-core's accessibility scan
injected into the page, and the page screenshots the README shows. `make test`
installs all three (the Makefile's chromium and axe-core targets, requirements.txt)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from tests.integration.require import require

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / "build" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "build" / "screenshots"
WEB_DIST = ROOT / "build" / "web" / "dist"
# As root on a closed network: no sandbox (it needs a user namespace), no GPU, and
# none of Chromium's own connections to Google (refused here, and slow to fail).
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# What fails the scan: axe's two worst impacts (moderate and minor are printed, not failed).
FAILING_IMPACTS = ("serious", "critical")


@contextlib.contextmanager
def chromium() -> Iterator:
    """One headless Chromium (a Playwright Browser); each launch gets a fresh, empty
    profile of its own (Playwright's temporary user-data dir), removed on close."""
    require(CHROMIUM.is_file(), f"no {CHROMIUM}: make test installs Debian's chromium")
    require(AXE.is_file(), f"no {AXE.relative_to(ROOT)}: make test installs axe-core")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def axe_violations(page) -> list[dict]:
    """axe-core's violations on the page as it is now (all impacts), each as
    {"id", "impact", "help", "targets"}."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return {passed: result.passes.length, violations: result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))};
        }"""
    )
    assert found["passed"] > 0, f"axe-core passed no rule on {page.url}: it did not scan the page"
    return found["violations"]


def failing(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in FAILING_IMPACTS]


def describe(violations: list[dict]) -> str:
    return "\n".join(f"  [{v['impact']}] {v['id']}: {v['help']} at {', '.join(v['targets'])}" for v in violations)


def screenshot(page, name: str) -> Path:
    """Saves the whole page as build/screenshots/<name>.png (git-ignored; the README's
    two are copies in docs/images/)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
