"""The import hook's pieces: the ``__main__`` rewrite and the finder's manners."""

from __future__ import annotations

import sys
import textwrap

import pytest

from callmetrics._zerocode.hooks import MAIN_HOOK, install, main_code, uninstall_if_idle


def test_main_code_wraps_after_each_definition_and_keeps_line_numbers() -> None:
    source = textwrap.dedent("""\
        def first():
            return second()
        TABLE = {"first": first}
        if True:
            def second():
                raise RuntimeError("line 6")
    """)
    seen: list[tuple[str, object]] = []
    namespace: dict[str, object] = {"__name__": "__main__",
                                    MAIN_HOOK: lambda name: seen.append((name, None))}
    exec(main_code(source, "<prog>"), namespace)  # noqa: S102  # the code under test
    assert [name for name, _ in seen] == ["first", "second"]
    assert namespace["TABLE"] == {"first": namespace["first"]}
    with pytest.raises(RuntimeError) as info:
        namespace["first"]()  # type: ignore[operator]
    assert info.traceback[-1].lineno + 1 == 6


def test_the_finder_comes_and_goes() -> None:
    before = list(sys.meta_path)
    install()
    install()  # once only
    assert len(sys.meta_path) == len(before) + 1
    uninstall_if_idle()
    assert sys.meta_path == before


def test_syntax_errors_are_reported_as_python_would() -> None:
    with pytest.raises(SyntaxError) as info:
        main_code("x = (\n", "prog.py")
    assert info.value.filename == "prog.py"
