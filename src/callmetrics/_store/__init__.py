"""The SQLite store: one run per recorder, written in the background.

The work is done by five modules, arrows pointing down:

- :mod:`callmetrics._store.writer`: the background writer (reads a ``Source``);
- :mod:`callmetrics._store.hooks`: closing writers at exit and across forks;
- :mod:`callmetrics._store.read`: reading without changing the file or leaving files;
- :mod:`callmetrics._store.db`: opening, creating, migrating, write transactions, pruning;
- :mod:`callmetrics._store.schema`: the tables, versions and file checks.

This module gathers the names the rest of the package imports.  The writer's are
imported on first use: reading a store (``callmetrics diff``, ``history``) needs
neither the writer nor its exit hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from callmetrics._store.db import connect_writable, prune
from callmetrics._store.read import connect_readonly, read_error, read_store
from callmetrics._store.schema import SCHEMA_VERSION, StoreError

if TYPE_CHECKING:
    from callmetrics._store.writer import LABEL_ENV, StoreWriter, attach_store

__all__ = [
    "LABEL_ENV",
    "SCHEMA_VERSION",
    "StoreError",
    "StoreWriter",
    "attach_store",
    "connect_readonly",
    "connect_writable",
    "prune",
    "read_error",
    "read_store",
]


def __getattr__(name: str) -> Any:
    """Import the writer's names (``LABEL_ENV``, ``StoreWriter``, ``attach_store``) on first use."""
    if name in ("LABEL_ENV", "StoreWriter", "attach_store"):
        from callmetrics._store import writer  # noqa: PLC0415  # lazy on purpose

        return getattr(writer, name)
    raise AttributeError(f"module 'callmetrics._store' has no attribute {name!r}")
