"""A CPU-bound program for ``run_cost.py``: no callmetrics import, no decorators.

Run: ``python benchmarks/cpu_workload.py coarse|fine [SCALE]``.  ``coarse`` is made of
functions that each take 10 to 40 microseconds on a 2024 x86 core (the target case:
under 5 % slowdown under ``callmetrics run``); ``fine`` is a recursive Fibonacci whose
calls take well under a microsecond (the worst case for any per-call tracker).  The last line of the
output is the seconds the work took, measured inside the program: wall time, then
CPU time of the whole process (less disturbed by other work on a shared machine).
"""

from __future__ import annotations

import sys
import time


class Matrix:
    """A small square matrix of floats."""

    def __init__(self, size: int, seed: int) -> None:
        """Fill a ``size`` x ``size`` matrix from a simple generator."""
        self.size = size
        self.rows = [[float((seed * (r + 3) * (c + 7)) % 97) for c in range(size)]
                     for r in range(size)]

    def totals(self) -> list[float]:
        """Return the sum of each row, then of each column."""
        rows = [sum(row) for row in self.rows]
        columns = [sum(row[c] for row in self.rows) for c in range(self.size)]
        return rows + columns

    def scaled(self, factor: float) -> Matrix:
        """Return a copy with every cell multiplied by ``factor``."""
        out = Matrix.__new__(Matrix)  # no second __init__: every tracked call is >= 10 us
        out.size = self.size
        out.rows = [[cell * factor for cell in row] for row in self.rows]
        return out


def checksum(matrix: Matrix) -> int:
    """Fold every cell into an integer checksum."""
    total = 0
    for row in matrix.rows:
        for value in row:
            total = (total * 31 + int(value)) % 1_000_003
    return total


def tokens(text: str) -> list[str]:
    """Split text into lower-case words without punctuation."""
    return [word.strip(".,;:").lower() for word in text.split()]


def word_counts(words: list[str]) -> dict[str, int]:
    """Count each word."""
    counts: dict[str, int] = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    return counts


TEXT = ("The quick brown fox jumps over the lazy dog; the dog sleeps, the fox runs. " * 20)
SIZE = 20  # the matrices' side: Matrix.scaled, the shortest function, takes about 10 us


def coarse(scale: int) -> int:
    """Functions of tens of microseconds each, called a few thousand times."""
    result = 0
    for i in range(200 * scale):
        matrix = Matrix(SIZE, i).scaled(1.5)
        result ^= checksum(matrix) ^ int(sum(matrix.totals()))
        result ^= len(word_counts(tokens(TEXT)))
    return result


def fib(n: int) -> int:
    """Return the n-th Fibonacci number, the slow way."""
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def fine(scale: int) -> int:
    """Half a million calls or so that each take a fraction of a microsecond."""
    return sum(fib(20) for _ in range(scale))


def main() -> None:
    """Run the chosen workload and print its result and the seconds it took."""
    kind = sys.argv[1] if len(sys.argv) > 1 else "coarse"
    scale = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    began, began_cpu = time.perf_counter(), time.process_time()
    result = coarse(scale) if kind == "coarse" else fine(scale)
    elapsed, elapsed_cpu = time.perf_counter() - began, time.process_time() - began_cpu
    print(result)
    print(f"{elapsed:.6f} {elapsed_cpu:.6f}")


if __name__ == "__main__":
    main()
