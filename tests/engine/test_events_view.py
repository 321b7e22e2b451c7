"""``analytics.events``: a cheap read-only view, built one event at a time."""

from __future__ import annotations

import pytest

from callmetrics import Analytics
from callmetrics._engine import events as events_module
from callmetrics._engine.records import make_event


def _calls(analytics: Analytics, n: int, name: str = "f") -> None:
    work = analytics.track("unit", name=name)(lambda i: i)
    for i in range(n):
        work(i)


def test_the_newest_event_is_built_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 10,000 retained, events[-1] and len() build one event, not 10,000."""
    analytics = Analytics(max_events=10_000)
    _calls(analytics, 12_000)
    built = []
    real = make_event

    def counting(*args: object, **kwargs: object) -> object:
        built.append(args[0])
        return real(*args, **kwargs)  # type: ignore[arg-type]  # passed through

    monkeypatch.setattr(events_module, "make_event", counting)
    view = analytics.events
    assert len(view) == 10_000
    newest = view[-1]
    assert newest["Function"] == "f"
    assert len(built) == 1
    assert len(view[-5:]) == 5
    assert len(built) == 6


def test_order_is_the_order_recorded_and_the_view_keeps_its_moment() -> None:
    """The last event is the call recorded last; calls made later are not in an old view."""
    analytics = Analytics(max_events=5)
    _calls(analytics, 3, "a")
    before = analytics.events
    _calls(analytics, 4, "b")  # overwrites the ring: the old view copied what it showed
    assert [e["Function"] for e in before] == ["a", "a", "a"]
    now = analytics.events
    assert [e["Function"] for e in now] == ["a", "b", "b", "b", "b"]
    assert now[-1]["Function"] == "b"
    assert now[1:3] == [now[1], now[2]]
    assert now == list(now)
    assert now + [now[0]] == [*now, now[0]]  # noqa: RUF005  # concatenates as a list does


def test_a_view_is_read_only_but_clear_drops_the_events() -> None:
    """Changes raise TypeError naming what to use; clear() drops the instance's events."""
    analytics = Analytics()
    _calls(analytics, 3)
    view = analytics.events
    with pytest.raises(TypeError, match="read-only"):
        view.append({})
    with pytest.raises(IndexError):
        view[3]
    view.clear()
    assert len(view) == 0
    assert len(analytics.events) == 0
    assert analytics.call_counts == {"f": 3}
