"""Write ``store_v1.db``: a store of schema version 1, as callmetrics wrote it before version 2.

Run once, with the code of main at commit d557cea (schema version 1), from the checkout:
``python tests/data/make_store_v1.py``.  Kept for the record of how the file was made.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from callmetrics import Analytics

PATH = Path(__file__).with_name("store_v1.db")


def main() -> None:
    """Record two runs (one labelled, with failures) and close them cleanly."""
    PATH.unlink(missing_ok=True)
    with Analytics(store=PATH, max_events=50) as analytics:
        @analytics.track("io", name="fetch")
        def fetch(i: int) -> int:
            if i % 10 == 0:
                raise ConnectionError(f"host {i} unreachable")
            return i

        for i in range(100):
            with contextlib.suppress(ConnectionError):
                fetch(i)
    with Analytics(store=PATH) as analytics:
        analytics._store.label = "second"  # the label the run is stored with

        @analytics.track("cpu", name="parse")
        def parse(i: int) -> int:
            return i * 2

        for i in range(30):
            parse(i)


if __name__ == "__main__":
    main()
