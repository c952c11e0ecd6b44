"""What is no longer needed is deleted: old break-room messages, uploads never used; by the
running hub too, as its clock moves on."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select

from hub import clock, housekeeping
from hub.accounts.models import User
from hub.attachments.models import Attachment
from hub.breakroom.models import BreakroomMessage
from hub.catalog.models import Subject
from hub.config import HubConfig
from hub.db import Database
from hub.matching.models import HelpRequest, RequestStatus
from hub.stats.models import StatsDirty, StatsFact
from tests.hubclient import advance_clock
from tests.test_attachments import png_with_secrets, upload


def test_old_break_room_messages_and_unused_uploads_are_deleted(database_url, tmp_path):
    db = Database(database_url)
    now = clock.now()
    folder = tmp_path / "attachments"
    folder.mkdir()
    with db.transaction() as s:
        student = s.scalar(select(User).where(User.username == "student1"))
        for age_h, text in ((25, "old"), (1, "new")):
            s.add(
                BreakroomMessage(
                    author_id=student.id,
                    client_msg_id=text,
                    text=text,
                    created_at=now - timedelta(hours=age_h),
                )
            )
        for age_h, name in ((25, "oldfile"), (1, "newfile")):
            s.add(
                Attachment(
                    id=name,
                    owner_id=student.id,
                    mime="application/pdf",
                    size=1,
                    created_at=now - timedelta(hours=age_h),
                )
            )
            (folder / name).write_bytes(b"%PDF-")
    with db.transaction() as s:
        housekeeping.run(s, HubConfig(data_dir=tmp_path), now)
    with db.transaction() as s:
        assert list(s.scalars(select(BreakroomMessage.text))) == ["new"]
        assert list(s.scalars(select(Attachment.id))) == ["newfile"]
        assert s.scalar(select(func.count()).select_from(User)) > 0
    assert sorted(p.name for p in folder.iterdir()) == ["newfile"]
    db.dispose()


def test_the_running_hub_deletes_an_upload_never_used_once_it_is_a_day_old(hub):
    answer = upload(hub, "student1", png_with_secrets())
    assert answer.status_code == 201, answer.text
    stored = hub.data_dir / "attachments" / answer.json()["attachment_id"]
    assert stored.exists()
    a_day_later = housekeeping.UNUSED_ATTACHMENT_AGE + timedelta(minutes=1)
    advance_clock(hub.url, a_day_later.total_seconds())
    deadline = time.monotonic() + 10
    while stored.exists():
        assert time.monotonic() < deadline, "the hub's housekeeping kept an unused upload"
        time.sleep(0.05)


def test_requests_finished_since_the_last_pass_become_statistics(database_url, tmp_path):
    db = Database(database_url)
    now = clock.now()
    with db.transaction() as s:
        student = s.scalar(select(User).where(User.username == "student1"))
        request = HelpRequest(
            student_id=student.id,
            subject_id=s.scalar(select(Subject.id).limit(1)),
            grade=9,
            status=RequestStatus.CANCELLED,
            created_at=now - timedelta(minutes=5),
            ended_at=now,
        )
        s.add(request)
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(StatsDirty)) > 0
        housekeeping.run(s, HubConfig(data_dir=tmp_path), now)
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(StatsDirty)) == 0
        assert s.scalar(select(StatsFact.request_id).where(StatsFact.request_id == request.id))
    db.dispose()
