"""Regenerate docs/report.png: the demo's report, rendered by Debian's chromium.

Run: ``.venv/bin/python scripts/screenshot.py`` (needs the test extras and chromium,
which ``bash scripts/test`` installs).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from callmetrics import Analytics, AnalyticsConfig
from callmetrics._demo import run_demo

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def main() -> int:
    """Run the demo, write its report and save a full-page screenshot of it."""
    chromium = shutil.which("chromium")
    if chromium is None:
        print("chromium is not installed; `bash scripts/test` installs it", file=sys.stderr)
        return 1
    target = Path(__file__).resolve().parent.parent / "docs" / "report.png"
    with tempfile.TemporaryDirectory() as folder:
        analytics = Analytics(AnalyticsConfig(report_dir=folder))
        run_demo(analytics)
        report = analytics.generate_reports(force_mode=True)
        assert report is not None
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            page.screenshot(path=str(target), full_page=True)
            browser.close()
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
