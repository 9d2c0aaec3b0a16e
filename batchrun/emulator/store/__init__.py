"""Durable state of the emulator in SQLite (WAL): one JSON document per resource, keyed by parent and id."""

from __future__ import annotations

from batchrun.emulator.store.db import Store, StoreError, StoreUnreadable, Table, decode, encode

__all__ = ["Store", "StoreError", "StoreUnreadable", "Table", "decode", "encode"]
