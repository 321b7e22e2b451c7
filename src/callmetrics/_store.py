"""The SQLite store: one run per recorder, written in the background.

Two modules do the work: :mod:`callmetrics._store_db` (the file: schema, opening,
checking, migrating, reading, pruning) and :mod:`callmetrics._store_writer` (the
background writer and the exit and fork hooks).  This module gathers the names
that the rest of the package imports.
"""

from __future__ import annotations

from callmetrics._store_db import (
    SCHEMA_VERSION,
    StoreError,
    connect_readonly,
    connect_writable,
    prune,
    read_error,
    read_store,
)
from callmetrics._store_writer import LABEL_ENV, StoreWriter, attach_store

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
