"""Regenerate docs/report.png: the demo's report, rendered by Debian's chromium.

Run: ``.venv/bin/python scripts/screenshot.py`` (needs the test extras and chromium,
which ``bash scripts/test`` installs).  Options: ``--report FILE`` screenshots an
existing report instead of running the demo; ``--width``, ``--scheme light|dark``,
``--full`` (the whole page, not the first screen), ``--section ID`` (one element:
``--section time-chart --out docs/where-the-time-goes.png``) and ``--out`` choose the
picture.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from callmetrics import Analytics, AnalyticsConfig
from callmetrics._cli.workload import run_demo

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
DOCS_PICTURE = Path(__file__).resolve().parent.parent / "docs" / "report.png"


def shoot(report: Path, out: Path, *, width: int, scheme: str, full: bool,
          section: str | None = None) -> None:
    """Save a screenshot of ``report`` at ``width`` CSS pixels in the colour ``scheme``.

    ``section``: the id of one element (``time-chart``) to picture alone.
    """
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed; `bash scripts/test` installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": 1000},
                                color_scheme=scheme)  # type: ignore[arg-type]  # checked by argparse
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        if section is not None:
            page.locator(f"#{section}").screenshot(path=str(out))
        else:
            page.screenshot(path=str(out), full_page=full)
        browser.close()


def main(argv: list[str] | None = None) -> int:
    """Run the demo (or take ``--report``), render its report and save a screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="an existing report (default: run the demo)")
    parser.add_argument("--out", type=Path, default=DOCS_PICTURE, help="where to save the PNG")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in CSS pixels")
    parser.add_argument("--scheme", choices=("light", "dark"), default="light")
    parser.add_argument("--full", action="store_true", help="the whole page, not one screen")
    parser.add_argument("--section", help="picture one element by id (e.g. time-chart)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        report = args.report
        if report is None:
            analytics = Analytics(AnalyticsConfig(report_dir=folder))
            run_demo(analytics)
            report = analytics.generate_reports(force_mode=True)
            assert report is not None
        shoot(report, args.out, width=args.width, scheme=args.scheme,
              full=args.full, section=args.section)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
