"""Which users have an open connection, on any hub process.

Kept in the database (hub.realtime.models), not on the bus: matching, rooms and kiosks read it
inside their own transactions. Closing a connection another process holds goes through
Socket.IO's client manager, which the bus chose (hub.bus)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from hub.db import Database
from hub.extensions import socketio
from hub.realtime.models import Connection, HubInstance


def connected(
    db: Database,
    sid: str,
    user_id: int,
    instance_id: str,
    now: datetime,
    credential_id: int | None = None,
) -> None:
    with db.transaction() as s:
        s.merge(
            Connection(
                sid=sid,
                user_id=user_id,
                instance_id=instance_id,
                connected_at=now,
                credential_id=credential_id,
            )
        )


def disconnected(db: Database, sid: str) -> bool:
    """Forget one connection; True when it was its user's last one."""
    with db.transaction() as s:
        conn = s.get(Connection, sid)
        if conn is None:
            return False
        s.delete(conn)
        s.flush()
        return not _has_connection(s, conn.user_id)


def _has_connection(s: Session, user_id: int) -> bool:
    return bool(s.scalar(select(func.count()).where(Connection.user_id == user_id)))


def disconnect_user(db: Database, user_id: int) -> None:
    """Close every connection of a user, on any hub process (e.g. when deactivated)."""
    _disconnect(db, Connection.user_id == user_id)


def disconnect_credentials(db: Database, credential_ids: list[int]) -> None:
    """Close the connections opened with these (revoked) logins or tokens, on any hub process."""
    _disconnect(db, Connection.credential_id.in_(credential_ids))


def _disconnect(db: Database, which: ColumnElement[bool]) -> None:
    with db.transaction() as s:
        sids = list(s.scalars(select(Connection.sid).where(which)))
    for sid in sids:
        socketio.server.disconnect(sid, namespace="/")


def heartbeat(db: Database, instance_id: str, now: datetime, stale_after_s: float) -> list[int]:
    """Mark this process alive; forget its own connections whose socket is gone, and the
    connections of processes that stopped.

    Returns the users whose last connection went that way."""
    with db.transaction() as s:
        s.merge(HubInstance(id=instance_id, seen_at=now))
        dead = list(
            s.scalars(
                select(HubInstance.id).where(
                    HubInstance.seen_at < now - timedelta(seconds=stale_after_s)
                )
            )
        )
        mine = s.scalars(select(Connection.sid).where(Connection.instance_id == instance_id))
        ghosts = [sid for sid in mine if not _socket_open(sid)]
        if not dead and not ghosts:
            return []
        gone = Connection.instance_id.in_(dead) | Connection.sid.in_(ghosts)
        users = set(s.scalars(select(Connection.user_id).where(gone)))
        s.execute(delete(Connection).where(gone))
        s.execute(delete(HubInstance).where(HubInstance.id.in_(dead)))
        s.flush()
        last = [u for u in users if not _has_connection(s, u)]
    for sid in ghosts:
        socketio.server.manager.disconnect(sid, "/", ignore_queue=True)
    return last


def _socket_open(sid: str) -> bool:
    """Whether this process still holds the socket `sid`. A client that leaves while its connect
    handler runs is left half-registered: python-socketio skips the disconnect handler for a
    socket still connecting, then marks it connected with no Engine.IO session behind it."""
    eio_sid = socketio.server.manager.eio_sid_from_sid(sid, "/")
    return eio_sid is not None and eio_sid in socketio.server.environ
