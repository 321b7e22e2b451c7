"""A service-like workload for looking at the report: dozens of functions, async, threads.

Run: ``python benchmarks/service_workload.py [--scale 1.0] [-o report.html]``.  It tracks
36 functions: async API handlers that await I/O (``asyncio.sleep``) and the queries
they make, sync helpers called many times (parsing, hashing, validation), CPU work in
four threads, and failures whose messages carry ids, amounts and UUIDs ("GET
/users/1422 timed out", "card declined (amount=1476)").  It writes the HTML report and
prints what it did; the browser tests (tests/outputs/test_report_browser.py) read the
same report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import threading
import time
import uuid
from pathlib import Path

from callmetrics import Analytics, AnalyticsConfig


def run_service(analytics: Analytics, *, scale: float = 1.0, seed: int = 7) -> None:  # noqa: PLR0915  # one workload: its functions sit where they are used
    """Run the workload on ``analytics`` (about ``scale`` seconds of wall time)."""
    rng = random.Random(seed)
    track = analytics.track
    requests = max(int(300 * scale), 20)

    # ---------------------------------------------------------------- helpers
    @track("CPU", name="codec.parse_json")
    def parse_json(text: str) -> object:
        return json.loads(text)

    @track("CPU", name="codec.dump_json")
    def dump_json(value: object) -> str:
        return json.dumps(value)

    @track("CPU", name="crypto.hash_token")
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @track("CPU", name="validate.check_email")
    def check_email(email: str) -> bool:
        return "@" in email

    @track("CPU", name="validate.check_amount")
    def check_amount(amount: int) -> int:
        if amount > 1400 and rng.random() < 0.3:
            raise ValueError(f"card declined (amount={amount})")
        return amount

    @track("CPU", name="pricing.apply_discount")
    def apply_discount(amount: int) -> int:
        return amount * 9 // 10

    @track("CPU", name="pricing.tax")
    def tax(amount: int) -> int:
        return amount // 5

    @track("CPU", name="cache.key_for")
    def key_for(kind: str, ident: int) -> str:
        return f"{kind}:{ident}"

    helpers_sync = []
    for i in range(10):  # small helpers, as a real code base has many
        def make(i: int) -> object:
            @track("CPU", name=f"util.step_{i}")
            def step(n: int) -> int:
                return sum(range(n % 50))
            return step
        helpers_sync.append(make(i))

    # --------------------------------------------------------------- storage
    @track("Database", name="db.query_user")
    async def query_user(user: int) -> dict[str, object]:
        await asyncio.sleep(rng.uniform(0.001, 0.004))
        if rng.random() < 0.02:
            raise TimeoutError(f"GET /users/{user} timed out")
        return {"id": user, "email": f"u{user}@example.com"}

    @track("Database", name="db.query_orders")
    async def query_orders(_user: int) -> list[int]:
        await asyncio.sleep(rng.uniform(0.002, 0.008))
        return [rng.randint(10, 1500) for _ in range(3)]

    @track("Database", name="db.save_order")
    async def save_order(_order: dict[str, object]) -> None:
        await asyncio.sleep(rng.uniform(0.001, 0.003))
        if rng.random() < 0.01:
            raise ConnectionError(f"lost connection to db-{rng.randint(1, 4)} "
                                  f"(request {uuid.UUID(int=rng.getrandbits(128))})")

    @track("Cache", name="cache.get")
    async def cache_get(key: str) -> str | None:
        await asyncio.sleep(0)
        if rng.random() < 0.01:
            raise KeyError(f"session '{key}' expired")
        return None if rng.random() < 0.5 else key

    @track("Queue", name="queue.publish")
    async def publish(_event: str) -> None:
        await asyncio.sleep(rng.uniform(0.0005, 0.002))

    @track("Auth", name="auth.verify_token")
    def verify_token(token: str) -> bool:
        return hash_token(token).startswith(("0", "1", "2", "3", "4", "5", "6", "7", "8"))

    @track("Auth", name="auth.load_session")
    async def load_session(user: int) -> str:
        await asyncio.sleep(rng.uniform(0.0002, 0.001))
        return f"s{user}"

    @track("CPU", name="search.rank")
    def rank(items: list[int]) -> list[int]:
        return sorted(items, key=lambda x: (x * 7919) % 101)

    @track("Notify", name="notify.send_email")
    async def send_email(_user: int) -> None:
        await asyncio.sleep(rng.uniform(0.001, 0.003))
        if rng.random() < 0.05:
            raise RuntimeError(f"SMTP 451 for message {uuid.UUID(int=rng.getrandbits(128))}")

    @track("CPU", name="geo.lookup")
    def geo_lookup(ip: int) -> str:
        return f"region-{ip % 7}"

    # ------------------------------------------------------------------ API
    @track("API call", name="api.get_user")
    async def get_user(user: int) -> dict[str, object]:
        verify_token(await load_session(user))
        geo_lookup(user)
        await cache_get(key_for("user", user))
        found = await query_user(user)
        check_email(str(found["email"]))
        return parse_json(dump_json(found))  # type: ignore[return-value]

    @track("API call", name="api.list_orders")
    async def list_orders(user: int) -> list[int]:
        orders = await query_orders(user)
        for step in helpers_sync:
            step(user)  # type: ignore[operator]
        return rank([apply_discount(o) for o in orders])

    @track("API call", name="api.checkout")
    async def checkout(user: int) -> int:
        await get_user(user)
        total = sum(await list_orders(user))
        amount = check_amount(total)
        await save_order({"user": user, "amount": amount + tax(amount)})
        await publish(hash_token(f"order-{user}"))
        await send_email(user)
        return amount

    @track("API call", name="api.health")
    async def health() -> str:
        return "ok"

    @track("Job", name="jobs.handle_request")
    async def handle(_i: int) -> None:
        user = rng.randint(1, 5000)
        kind = rng.random()
        try:
            if kind < 0.5:
                await get_user(user)
            elif kind < 0.8:
                await list_orders(user)
            elif kind < 0.97:
                await checkout(user)
            else:
                await health()
        except (TimeoutError, ValueError, ConnectionError, KeyError, RuntimeError):
            pass

    async def serve() -> None:
        for start in range(0, requests, 50):
            await asyncio.gather(*(handle(i) for i in range(start, min(start + 50, requests))))

    # -------------------------------------------------------- worker threads
    @track("CPU", name="reports.aggregate_day")
    def aggregate_day(day: int) -> int:
        return sum(crunch(day * 100 + k) for k in range(20))

    @track("CPU", name="reports.crunch")
    def crunch(n: int) -> int:
        return sum(i * i for i in range(2000 + n % 500))

    @track("CPU", name="reports.export_csv")
    def export_csv(rows: int) -> str:
        if rows % 37 == 0:
            raise OSError(f"disk full writing /tmp/export-{rows:06d}.csv")
        return ",".join(str(r) for r in range(rows % 200))

    def worker(offset: int) -> None:
        for day in range(max(int(12 * scale), 3)):
            aggregate_day(day + offset)
            with contextlib.suppress(OSError):
                export_csv(day * 7 + offset)

    threads = [threading.Thread(target=worker, args=(k * 100,)) for k in range(4)]
    for thread in threads:
        thread.start()
    asyncio.run(serve())
    for thread in threads:
        thread.join()


def main() -> None:
    """Run the workload and write its report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("-o", "--output", type=Path, default=Path("service-report.html"))
    args = parser.parse_args()
    analytics = Analytics(AnalyticsConfig(report_dir=args.output.parent or Path()))
    began = time.perf_counter()
    run_service(analytics, scale=args.scale)
    took = time.perf_counter() - began
    written = analytics.generate_reports(force_mode=True, path=args.output)
    stats = analytics.to_dict()["totals"]
    print(f"{stats['calls']:,} calls over {stats['function_count']} functions in {took:.2f} s, "
          f"{stats['failures']:,} failures; report: {written}")


if __name__ == "__main__":
    main()
