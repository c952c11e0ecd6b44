"""Writing, reading and deleting the audit log. Features above accounts call `record`; the data
rights of accounts (below this feature) reach it through `accounts.mydata.data_right_used`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from hub.accounts.access import Identity
from hub.accounts.models import User
from hub.audit.models import AuditEntry

PAGE_SIZE = 50
# kind:id, e.g. "room:ab12", "report:3", "stats:2026-01-01..2026-01-31:site:2"; or nothing.
REF = re.compile(r"(?:[a-z]+:[A-Za-z0-9_.:-]{1,72})?")


class Action(StrEnum):
    REPORT_VIEWED = "report.viewed"
    TRANSCRIPT_VIEWED = "transcript.viewed"
    STATS_EXPORTED = "stats.exported"
    DATA_DOWNLOADED = "data.downloaded"
    ACCOUNT_DELETED = "account.deleted"


def record(s: Session, actor: Identity, action: Action, ref: str, now: datetime) -> AuditEntry:
    """Write one entry. `ref` names an object, never anything a person wrote."""
    if not REF.fullmatch(ref):
        raise ValueError(f"an audit reference is kind:id, not {ref!r}")
    entry = AuditEntry(
        at=now, actor_id=actor.user_id, actor_role=actor.role.value, action=action, ref=ref
    )
    s.add(entry)
    s.flush()
    return entry


def record_data_right(
    s: Session, *, identity: Identity, action: str, now: datetime, **_extra: Any
) -> None:
    """A student downloaded their data or deleted their account (connected to
    hub.accounts.mydata.data_right_used). A deletion takes the student out of the log: the entry
    says that a student deleted their account, and when, not who."""
    record(s, identity, Action(action), "", now)
    if action == Action.ACCOUNT_DELETED:
        s.execute(
            update(AuditEntry).where(AuditEntry.actor_id == identity.user_id).values(actor_id=None)
        )


@dataclass(frozen=True)
class Line:
    entry: AuditEntry
    actor: str  # the actor's username, "" for a deleted account


@dataclass(frozen=True)
class Page:
    lines: list[Line]
    number: int  # from 1
    pages: int  # at least 1
    total: int


def entries(s: Session, action: Action | None, number: int) -> Page:
    """One page of the log, newest first, of one action or all."""
    where = [AuditEntry.action == action] if action is not None else []
    total = s.scalar(select(func.count()).select_from(AuditEntry).where(*where)) or 0
    pages = max(1, math.ceil(total / PAGE_SIZE))
    rows = s.execute(
        select(AuditEntry, User.username)
        .outerjoin(User, User.id == AuditEntry.actor_id)
        .where(*where)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .offset((number - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    return Page([Line(e, name or "") for e, name in rows], number, pages, total)


def delete_old(s: Session, now: datetime, retention_days: int) -> int:
    """Delete entries older than `retention_days`; how many."""
    cutoff = now - timedelta(days=retention_days)
    result = s.execute(delete(AuditEntry).where(AuditEntry.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
