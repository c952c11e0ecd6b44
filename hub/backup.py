"""`lektiecafe backup`, `restore` and `migrate-data`."""

from __future__ import annotations

from pathlib import Path

from hub.config import HubConfig


def backup(config: HubConfig, archive: Path) -> int:
    raise SystemExit("not built yet")


def restore(config: HubConfig, archive: Path, force: bool) -> int:
    raise SystemExit("not built yet")


def migrate_data(config: HubConfig, to_url: str) -> int:
    raise SystemExit("not built yet")
