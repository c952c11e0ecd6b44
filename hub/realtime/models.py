"""Who is connected, across all hub processes. A process that dies stops refreshing its
`HubInstance` row; the survivors then treat its connections as closed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class HubInstance(Base):
    __tablename__ = "hub_instances"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seen_at: Mapped[datetime]


class Connection(Base):
    __tablename__ = "connections"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    instance_id: Mapped[str] = mapped_column(String(32), index=True)
    connected_at: Mapped[datetime]
    # The login or API token it was opened with (hub.accounts.Credential; None for a kiosk's
    # device token): revoking that closes the connection. No foreign key: the revocation reads
    # it after the credential is gone.
    credential_id: Mapped[int | None] = mapped_column(index=True)
