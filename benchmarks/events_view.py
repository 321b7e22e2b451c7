"""What reading ``analytics.events`` costs with 10,000 retained calls.

``events[-1]`` and ``len(events)`` build only what they return (a view); a full copy,
``list(analytics.events)``, builds every event, as each access did before the view.

    python benchmarks/events_view.py
"""

from __future__ import annotations

import timeit

from callmetrics import Analytics


def main() -> None:
    analytics = Analytics(max_events=10_000)
    work = analytics.track("bench", name="work")(lambda i: i)
    for i in range(20_000):
        work(i)
    rounds = 200
    newest = min(timeit.repeat(lambda: analytics.events[-1], number=rounds, repeat=5)) / rounds
    size = min(timeit.repeat(lambda: len(analytics.events), number=rounds, repeat=5)) / rounds
    whole = min(timeit.repeat(lambda: list(analytics.events), number=5, repeat=3)) / 5
    print(f"events[-1], 10,000 retained:        {newest * 1e6:8.1f} µs")
    print(f"len(events), 10,000 retained:       {size * 1e6:8.1f} µs")
    print(f"list(events) (every event built):   {whole * 1e6:8.1f} µs")


if __name__ == "__main__":
    main()
