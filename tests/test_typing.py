"""Type checkers see a tracked function's own parameters and return type (mypy --strict)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXAMPLE = textwrap.dedent('''
    from collections.abc import AsyncIterator, Iterator

    from callmetrics import Analytics

    analytics = Analytics()


    @analytics.track("math")
    def add(a: int, b: int = 1, *, label: str = "") -> int:
        return a + b


    @analytics.track("io", name="fetch")
    async def fetch(url: str) -> bytes:
        return url.encode()


    @analytics.track("io")
    def lines(n: int) -> Iterator[str]:
        yield from (str(i) for i in range(n))


    @analytics.track("io")
    async def ticks(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i


    class Client:
        @analytics.track("API")
        def get(self, key: str) -> list[int]:
            return [len(key)]


    reveal_type(add)  # reveals: def (a: int, b: int =, *, label: str =) -> int
    reveal_type(fetch)  # reveals: def (url: str) -> typing.Coroutine[Any, Any, bytes]
    reveal_type(lines)  # reveals: def (n: int) -> typing.Iterator[str]
    reveal_type(ticks)  # reveals: def (n: int) -> typing.AsyncIterator[int]
    reveal_type(Client().get)  # reveals: def (key: str) -> list[int]
    total: int = add(1, label="x")
    client_result: list[int] = Client().get("k")


    async def use() -> bytes:
        return await fetch("u")


    wrong_return: str = add(1)  # rejected
    add("one")  # rejected
    add(1, colour="red")  # rejected
    fetch(3)  # rejected
    Client().get(5)  # rejected
''').lstrip()


@pytest.fixture(scope="module")
def mypy_output(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[str]]:
    """Run mypy --strict once on the example and return its messages by line."""
    work = tmp_path_factory.mktemp("typing")
    # Reuse mypy's cache between local runs (pytest's cache dir) when there is one
    # (not under -p no:cacheprovider): a cold run spends seconds on the standard library.
    cache: pytest.Cache | None = getattr(request.config, "cache", None)
    cache_dir = cache.mkdir("mypy") if cache is not None else work / "cache"
    example = work / "example.py"
    example.write_text(EXAMPLE)
    env = dict(os.environ)
    src = Path(__file__).resolve().parent.parent / "src"
    env["MYPYPATH"] = str(src)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--hide-error-context",
         "--cache-dir", str(cache_dir), str(example)],
        capture_output=True, text=True, cwd=work, env=env, timeout=300, check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    by_line: dict[int, list[str]] = {}
    for line in result.stdout.splitlines():
        found = re.match(r".*example\.py:(\d+): (.*)$", line)
        assert found is not None, line
        # Older mypy versions spell builtin types "builtins.int": compare without it.
        message = found.group(2).replace("builtins.", "")
        by_line.setdefault(int(found.group(1)), []).append(message)
    return by_line


def marked(marker: str) -> dict[int, str]:
    """Return the example's lines carrying a ``# marker`` comment, with the text after it."""
    return {number: line.split(f"# {marker}", 1)[1].lstrip(": ")
            for number, line in enumerate(EXAMPLE.splitlines(), start=1)
            if f"# {marker}" in line}


def test_revealed_types_keep_signatures(mypy_output: dict[int, list[str]]) -> None:
    """reveal_type shows each tracked callable with its own parameters and return type."""
    expected = marked("reveals")
    assert len(expected) == 5
    for line, shown in expected.items():
        assert mypy_output.get(line) == [f'note: Revealed type is "{shown}"'], (line,
                                                                              mypy_output)


def test_misuse_is_rejected(mypy_output: dict[int, list[str]]) -> None:
    """Wrong argument types, unknown keywords and wrong result types are type errors."""
    rejected = marked("rejected")
    assert len(rejected) == 5
    for line in rejected:
        messages = mypy_output.get(line, [])
        assert any(m.startswith("error:") for m in messages), (line, mypy_output)


def test_correct_use_is_accepted(mypy_output: dict[int, list[str]]) -> None:
    """Correct calls, including awaiting the coroutine, give no errors anywhere else."""
    rejected = marked("rejected")
    errors = {line: m for line, m in mypy_output.items() if line not in rejected
              if any(x.startswith("error:") for x in m)}
    assert errors == {}
