"""Starting again: reset(), the seed's ways of clearing, and read-only snapshots that say so."""

from __future__ import annotations

import pytest

from callmetrics import Analytics


def _tracked(analytics: Analytics) -> object:
    @analytics.track("unit", name="work")
    def work() -> int:
        return 1

    for _ in range(5):
        work()
    return work


def test_reset_forgets_every_call_and_keeps_the_functions_tracked() -> None:
    """Counts, aggregates and events go; the same wrapper counts again from zero."""
    analytics = Analytics()
    work = _tracked(analytics)
    analytics.reset()
    assert analytics.call_counts == {}
    assert analytics.events == []
    assert analytics.get_stats()["total_calls"] == 0
    work()  # type: ignore[operator]  # the tracked function
    assert analytics.call_counts == {"work": 1}
    assert analytics.get_stats()["slowest"] is not None


def test_the_seeds_ways_of_clearing_work() -> None:
    """events.clear() and `events = []` drop the events; call_counts.clear() resets."""
    analytics = Analytics()
    _tracked(analytics)
    analytics.events.clear()
    assert analytics.events == []
    assert analytics.call_counts == {"work": 5}
    _tracked(analytics)
    analytics.events = []  # the seed's attribute assignment
    assert analytics.events == []
    analytics.call_counts.clear()
    assert analytics.call_counts == {}
    assert analytics.get_stats()["total_calls"] == 0
    _tracked(analytics)
    analytics.decorator_overhead.clear()
    assert analytics.success_counts == {}


@pytest.mark.parametrize("change", [
    lambda a: a.call_counts.__setitem__("work", 100),
    lambda a: a.call_counts.update(work=1),
    lambda a: a.call_counts.pop("work"),
    lambda a: a.success_counts.__delitem__("work"),
    lambda a: a.decorator_overhead.setdefault("x", 1.0),
    lambda a: a.events.append({}),
    lambda a: a.events.pop(),
    lambda a: a.events.__delitem__(0),
    lambda a: a.events.sort(),
])
def test_other_changes_to_a_snapshot_raise_saying_what_to_use(change: object) -> None:
    """A change that would silently do nothing raises TypeError naming reset()."""
    analytics = Analytics()
    _tracked(analytics)
    with pytest.raises(TypeError, match=r"read-only snapshot.*reset\(\)"):
        change(analytics)  # type: ignore[operator]  # a lambda
    assert analytics.call_counts == {"work": 5}


def test_events_can_only_be_set_to_empty() -> None:
    """`analytics.events = [...]` with calls in it raises, pointing to restore()."""
    analytics = Analytics()
    _tracked(analytics)
    with pytest.raises(TypeError, match="restore"):
        analytics.events = [analytics.events[0]]  # on purpose
    assert len(analytics.events) == 5
