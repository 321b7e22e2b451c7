"""Failures grouped by cause: the exception type, where it was raised, and its message's template.

A message that embeds an id ("GET /users/1422 timed out", "card declined
(amount=1476)") would otherwise make one group per call.  ``template`` masks what
varies from call to call (UUIDs, hexadecimal ids, numbers, quoted values) so that
calls failing for the same reason land in one group; each group keeps up to three
example messages as they were.  The report, ``stats``, ``to_dict()`` and the
notebook all group through :func:`failure_causes`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from callmetrics._engine.view import RetainedCall

__all__ = ["EXAMPLES", "FailureCause", "failure_causes", "short_location", "template"]

# Example messages kept per group (distinct, newest first).
EXAMPLES = 3

# Order matters: a UUID holds hex runs and numbers, a quoted value may hold either.
_MASKS = (
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                r"[0-9a-fA-F]{12}\b"), "<uuid>"),
    # A quoted value is one token ('alice', "x-17"); quoted text with spaces is a sentence
    # (KeyError quotes its whole message) and keeps its words.
    (re.compile(r"'[^'\s]{1,200}'"), "'<value>'"),
    (re.compile(r'"[^"\s]{1,200}"'), '"<value>"'),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    # A run of 8+ hex digits holding a digit and a letter (a hash, an object id).
    (re.compile(r"\b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    # A number not inside a word (``fn_10`` and ``utf8`` stay): 52, -3, 1.5, 2e-3.
    (re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"), "<n>"),
)


def template(message: str) -> str:
    """``message`` with what varies between calls masked: ``user <n> not found``."""
    for pattern, mask in _MASKS:
        message = pattern.sub(mask, message)
    return message


_SITE = re.compile(r"^.*[\\/](?:site|dist)-packages[\\/]")


def short_location(location: str | None, cwd: str | None = None) -> str | None:
    """A raise location with its path relative to the working directory, or past ``site-packages/``.

    ``/home/me/app/api.py:12 in get`` reads ``api.py:12 in get`` when run from
    ``/home/me/app``; a library's frame reads ``requests/models.py:960 in raise_for_status``.
    """
    if not location:
        return location
    base = (cwd if cwd is not None else _cwd()).rstrip("/\\")
    if base and location.startswith(base + os.sep):
        return location[len(base) + 1:]
    return _SITE.sub("", location, count=1)


def _cwd() -> str:
    try:
        return str(Path.cwd())
    except OSError:  # the working directory was removed
        return ""


@dataclass(slots=True)
class FailureCause:
    """Retained failures with one exception type, raise location and message template."""

    error: str
    location: str | None
    template: str | None
    """The message with its varying parts masked; None when no message was recorded."""
    event_type: str
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    last_duration: float = 0.0
    examples: list[str] = field(default_factory=list)
    """Up to three distinct messages, newest first."""
    functions: Counter[str] = field(default_factory=Counter)
    """The tracked functions whose calls failed this way, with their counts."""

    @property
    def function(self) -> str:
        """The function with the most of these failures (ties: by name)."""
        return min(self.functions.items(), key=lambda item: (-item[1], item[0]))[0]

    @property
    def message(self) -> str | None:
        """The newest example message (None when none was recorded)."""
        return self.examples[0] if self.examples else None


def failure_causes(calls: Iterable[RetainedCall]) -> list[FailureCause]:
    """Group the failed calls among ``calls`` by cause; the most frequent cause first.

    The key is the exception type, the raise location (or, when none was recorded,
    the function) and the message's :func:`template`.  Ties are broken by the newest
    failure, then by type.
    """
    groups: dict[tuple[str, str, str | None], FailureCause] = {}
    newest: dict[tuple[str, str, str | None], list[tuple[float, str]]] = {}
    for call in calls:
        if call.error is None:
            continue
        shape = None if call.message is None else template(call.message)
        key = (call.error, call.location or f"\0{call.name}", shape)
        group = groups.get(key)
        if group is None:
            group = groups[key] = FailureCause(call.error, call.location, shape,
                                               call.event_type, first=call.start,
                                               last=call.start,
                                               last_duration=call.duration)
            newest[key] = []
        group.count += 1
        group.functions[call.name] += 1
        group.first = min(group.first, call.start)
        if call.start >= group.last:
            group.last, group.last_duration = call.start, call.duration
            group.event_type = call.event_type
        if call.message is not None:
            _keep_example(newest[key], call.start, call.message)
    for key, group in groups.items():
        group.examples = [message for _, message in sorted(newest[key], reverse=True)]
    return sorted(groups.values(), key=lambda g: (-g.count, -g.last, g.error))


def _keep_example(kept: list[tuple[float, str]], start: float, message: str) -> None:
    """Keep the newest ``EXAMPLES`` distinct messages (a short list: linear is fine)."""
    for i, (when, text) in enumerate(kept):
        if text == message:
            if start > when:
                kept[i] = (start, text)
            return
    if len(kept) < EXAMPLES:
        kept.append((start, message))
        return
    oldest = min(range(len(kept)), key=lambda i: kept[i][0])
    if start > kept[oldest][0]:
        kept[oldest] = (start, message)
