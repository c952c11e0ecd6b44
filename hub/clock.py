"""One clock for the hub. Domain functions take `now` as an argument; edges ask this module."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
