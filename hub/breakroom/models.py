"""Chat between students waiting in the break room."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class BreakroomMessage(Base):
    __tablename__ = "breakroom_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    client_msg_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(index=True)
    removed_at: Mapped[datetime | None] = mapped_column(default=None)
    removed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
