"""A room is where a matched student and helper meet: its chat, its shared document, reports of
problems and the feedback both give afterwards."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("help_requests.id", ondelete="CASCADE"))
    student_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    helper_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    ended_reason: Mapped[str | None] = mapped_column(String(20), default=None)
    ended_by: Mapped[str | None] = mapped_column(String(12), default=None)  # a role, or None
    # Set while a member has no open connection; the room ends after the grace period.
    student_offline_since: Mapped[datetime | None] = mapped_column(default=None)
    helper_offline_since: Mapped[datetime | None] = mapped_column(default=None)
    # When the retention job deleted each kind of content (the row stays for the statistics).
    chat_deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    document_deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    attachments_deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class RoomMessage(Base):
    __tablename__ = "room_messages"
    __table_args__ = (UniqueConstraint("room_id", "author_id", "client_msg_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_msg_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class DocUpdate(Base):
    """One Yjs update, appended before it is acknowledged. Its id is the update's `seq`."""

    __tablename__ = "doc_updates"
    __table_args__ = (Index("ix_doc_updates_room_id_id", "room_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class DocSnapshot(Base):
    """The document merged up to and including update `upto_seq`; later updates apply on top."""

    __tablename__ = "doc_snapshots"

    room_id: Mapped[str] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)
    upto_seq: Mapped[int]


class Report(Base):
    """A problem reported from a room. The room's chat and document are kept while it is open."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    resolution: Mapped[str] = mapped_column(Text, default="")


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("room_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(12))
    rating: Mapped[int]
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
