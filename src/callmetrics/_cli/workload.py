"""A short built-in workload that shows what callmetrics records."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

from callmetrics._analytics import Analytics

__all__ = ["run_demo"]


def run_demo(analytics: Analytics, *, seed: int = 7, scale: float = 1.0) -> None:
    """Run a mixed workload (sync, async, generators, failures) of about a second.

    Args:
        analytics: the instance that records the workload.
        seed: seed of the random durations and failures.
        scale: multiplies every sleep; 0 makes the workload nearly instant (for tests).
    """
    rng = random.Random(seed)

    @analytics.track("API call")
    async def fetch_user(user_id: int) -> dict[str, int]:
        await asyncio.sleep(rng.uniform(0.005, 0.03) * scale)
        if user_id % 13 == 0:
            raise ConnectionError(f"upstream refused user {user_id}")
        return {"id": user_id}

    @analytics.track("Database")
    def query_orders(user_id: int) -> list[int]:
        time.sleep(rng.lognormvariate(-6.0, 0.8) * scale)
        if rng.random() < 0.03:
            raise TimeoutError("database did not answer")
        return [user_id * 10 + i for i in range(3)]

    @analytics.track("CPU")
    def render_page(size: int) -> int:
        return sum(i * i for i in range(size))

    @analytics.track("IO")
    def read_lines(count: int) -> Iterator[str]:
        for i in range(count):
            time.sleep(0.0005 * scale)
            yield f"line {i}"

    class Cache:
        """A tiny cache whose lookups are tracked as methods."""

        def __init__(self) -> None:
            self.data: dict[int, int] = {}

        @analytics.track("Cache")
        def get(self, key: int) -> int | None:
            return self.data.get(key)

    cache = Cache()

    async def serve(user_id: int) -> None:
        try:
            await fetch_user(user_id)
        except ConnectionError:
            return
        if cache.get(user_id) is None:
            try:
                cache.data[user_id] = len(query_orders(user_id))
            except TimeoutError:
                return
        render_page(rng.randint(200, 20_000))

    async def main() -> None:
        for start in range(0, 240, 40):
            await asyncio.gather(*(serve(i % 60) for i in range(start, start + 40)))

    with analytics.measure("load config", event_type="IO"):
        time.sleep(0.05 * scale)
    asyncio.run(main())
    for _ in range(5):
        for _line in read_lines(20):
            pass
