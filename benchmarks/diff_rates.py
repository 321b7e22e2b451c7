"""False- and true-positive rates of ``callmetrics diff``'s regression gate.

Run: ``python benchmarks/diff_rates.py [--repeat N]``.  Prints figures; never fails on
them.  Four cases, each repeated: two runs of the same workload (synthetic durations
drawn from one distribution, and real CPU-bound tracked calls made interleaved), and
the same with one function made 1.5x slower.  A good gate passes the first two and
fails the last two, naming only the slowed function.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_cli_diff import interleaved_runs, workload, write_samples

from callmetrics._cli import main  # after the tests folder is importable


def _diff(store: Path) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        return main(["diff", str(store), "--base", "base", "--head", "head"])


def _synthetic(store: Path, seed: int, slowdown: float) -> None:
    rng = random.Random(seed)
    write_samples(store, workload(rng), label="base")
    write_samples(store, workload(rng, slowdown=slowdown), label="head")


def _rate(name: str, repeat: int, make: Callable[[Path, int], None], expected: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        hits = 0
        for i in range(repeat):
            store = Path(folder) / f"{i}.db"
            make(store, i)
            hits += _diff(store) == expected
    print(f"{name:<42} exit {expected} in {hits:>3} of {repeat}")


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=20)
    repeat = parser.parse_args().repeat
    _rate("same workload, synthetic draws", repeat,
          lambda store, i: _synthetic(store, i, 1.0), 0)
    _rate("same workload, real interleaved calls", repeat,
          lambda store, _i: interleaved_runs(store, head_factor=1.0), 0)
    _rate("one function 1.5x slower, synthetic", repeat,
          lambda store, i: _synthetic(store, 10_000 + i, 1.5), 1)
    _rate("one function 1.5x slower, real interleaved", repeat,
          lambda store, _i: interleaved_runs(store, head_factor=1.5), 1)


if __name__ == "__main__":
    main_()
