"""One line of the audit log. It says who (a user id and their role), did what (an action such as
"report.viewed") to which object (a short reference such as "room:ab12"), and when; never what
was read, and no free text."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class AuditEntry(Base):
    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    # No foreign key: the log outlives accounts. A student who deletes their account is taken
    # out of it (None), so a later account with the same id is never linked to their entries.
    actor_id: Mapped[int | None] = mapped_column(index=True, default=None)
    actor_role: Mapped[str] = mapped_column(String(12))
    action: Mapped[str] = mapped_column(String(40), index=True)
    ref: Mapped[str] = mapped_column(String(80), default="")
