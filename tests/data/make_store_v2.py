"""Write ``store_v2.db``: a store of schema version 2, as callmetrics wrote it before notes.

Run once, with the code of main at commit 4a79c53 (schema version 2, successful calls
carry no message), from the checkout: ``python tests/data/make_store_v2.py``.  Kept for
the record of how the file was made; ``test_noted.py`` checks that it still loads.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from callmetrics import Analytics

PATH = Path(__file__).with_name("store_v2.db")


def main() -> None:
    """Record one run: 90 successes and 10 failures of ``fetch``, 20 blocks of ``parse``."""
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
        for _ in range(20):
            with analytics.measure("parse", event_type="cpu"):
                pass


if __name__ == "__main__":
    main()
