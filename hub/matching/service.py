"""Matching over the database: requests, duty, offers and the dispatcher's one pass.

Every function runs inside the caller's transaction and returns the notices to send after it
commits. Nothing here keeps state in memory, so any hub process can run any of it."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import (
    Integer,
    Row,
    String,
    case,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session, lazyload

from hub.accounts import service as accounts
from hub.accounts.access import Identity
from hub.accounts.models import User, helper_languages, helper_subjects
from hub.attachments import service as attachments
from hub.attachments.models import Attachment
from hub.catalog.models import GRADES, Language, Subject
from hub.config import HubConfig
from hub.errors import Conflict, Invalid, NotFound
from hub.matching import policy
from hub.matching.models import (
    DutyStatus,
    HelperDuty,
    HelpRequest,
    Offer,
    OfferStatus,
    RequestStatus,
)
from hub.realtime.models import Connection
from hub.realtime.notices import Notice
from hub.rooms import service as rooms
from hub.rooms.models import Room
from hub.schedule import service as schedule
from hub.shifts import service as shifts

# Rows of a few columns, read by name: the passes over the queue read these rather than ORM
# objects, which with thousands waiting cost most of a pass (bench/matching.py).
PlainRow = Row[*tuple[Any, ...]]

# ---------------------------------------------------------------------------------------------
# Students


def open_request_of(s: Session, student_id: int) -> HelpRequest | None:
    return s.scalar(
        select(HelpRequest).where(
            HelpRequest.student_id == student_id, HelpRequest.status == RequestStatus.WAITING
        )
    )


def create_request(
    s: Session,
    student: Identity,
    *,
    subject_id: int,
    grade: int,
    language_code: str | None,
    note: str,
    attachment_ids: list[str],
    now: datetime,
    config: HubConfig,
) -> dict[str, Any]:
    # One query for what the request is checked against: whether the student waits already,
    # how many wait ahead for the subject (all who asked before: a request is stored and given
    # its id under the matching lock, so none asked at the same instant comes after) and whether
    # the subject and the language exist and are offered.
    def active(column: Any, key: Any, where: Any) -> Any:
        return select(column).where(where == key).scalar_subquery()

    waiting = HelpRequest.status == RequestStatus.WAITING
    checks = s.execute(
        select(
            select(func.count())
            .where(waiting, HelpRequest.student_id == student.user_id)
            .scalar_subquery()
            .label("mine"),
            select(func.count())
            .where(waiting, HelpRequest.subject_id == subject_id, HelpRequest.created_at <= now)
            .scalar_subquery()
            .label("ahead"),
            active(Subject.active, subject_id, Subject.id).label("subject"),
            active(Language.active, language_code, Language.code).label("language"),
        )
    ).one()
    if checks.mine:
        raise Conflict(_("You are already waiting for a helper."))
    schedule.refuse_if_closed(s, now, config.zone)  # nobody would serve the queue
    if not checks.subject:
        raise Invalid(_("That subject does not exist."), fields={"subject": "unknown"})
    if grade not in GRADES:
        raise Invalid(_("Grade must be 8, 9 or 10."), fields={"grade": "unknown"})
    if language_code is not None and not checks.language:
        raise Invalid(_("That language does not exist."), fields={"language": "unknown"})
    request = HelpRequest(
        student_id=student.user_id,
        subject_id=subject_id,
        grade=grade,
        language_code=language_code,
        note=note,
        created_at=now,
    )
    status = _status_at(s, 1 + checks.ahead, request, config, now)
    request.told_position, request.told_eta_s = status["position"], status["eta_s"]
    s.add(request)
    s.flush()
    if attachment_ids:
        attachments.attach_to_request(s, student.user_id, attachment_ids, request.id)
    return {"request_id": request.id, **status}


def queue_status(
    s: Session, request: HelpRequest, config: HubConfig, now: datetime
) -> dict[str, Any]:
    """The student's place and estimated wait, as told in the ack and in `queue:update`; when
    nobody on duty can help, `next_shift`: when the next shift that can help starts (ISO, UTC),
    else None."""
    position = 1 + (
        s.scalar(
            select(func.count()).where(
                HelpRequest.status == RequestStatus.WAITING,
                HelpRequest.subject_id == request.subject_id,
                (HelpRequest.created_at < request.created_at)
                | ((HelpRequest.created_at == request.created_at) & (HelpRequest.id < request.id)),
            )
        )
        or 0
    )
    return _status_at(s, position, request, config, now)


def _status_at(
    s: Session, position: int, request: HelpRequest, config: HubConfig, now: datetime
) -> dict[str, Any]:
    eta = wait_s(s, position, request, config)
    shift = _next_shift_for(s, request, now, config) if eta is None else None
    return {
        "position": policy.told_position(position),
        "eta_s": eta,
        "next_shift": shift.starts_at.isoformat() if shift else None,
    }


def wait_s(s: Session, position: int, request: policy.Asking, config: HubConfig) -> int | None:
    """The estimated wait of one request at `position`: what HelpAtHand.wait_s tells, from one
    query counting the helpers on duty who can take it (and one more for the typical session if
    any can), instead of everyone on duty with their skills."""
    able = (
        select(func.count().filter(HelperDuty.status == DutyStatus.AVAILABLE), func.count())
        .select_from(HelperDuty)
        .join(User, User.id == HelperDuty.helper_id)
        .where(
            # policy.can_help in SQL: the subject, the grade and (if asked for) the language
            HelperDuty.status.in_([DutyStatus.AVAILABLE, DutyStatus.BUSY]),
            User.grade_min <= request.grade,
            User.grade_max >= request.grade,
            select(helper_subjects.c.user_id)
            .where(
                helper_subjects.c.user_id == HelperDuty.helper_id,
                helper_subjects.c.subject_id == request.subject_id,
            )
            .exists(),
        )
    )
    if request.language_code is not None:
        able = able.where(
            select(helper_languages.c.user_id)
            .where(
                helper_languages.c.user_id == HelperDuty.helper_id,
                helper_languages.c.language_code == request.language_code,
            )
            .exists()
        )
    free_able, on_duty_able = s.execute(able).one()
    if not on_duty_able:
        return None
    return policy.estimate_wait_s(position, free_able, on_duty_able, typical_session_s(s, config))


def _next_shift_for(
    s: Session, request: HelpRequest, now: datetime, config: HubConfig
) -> schedule.Shift | None:
    """The next shift a helper who can take `request` signed up for; without one, the next shift
    at all (helpers may come on duty without signing up)."""
    return shifts.next_covered_shift(
        s, request.subject_id, request.grade, request.language_code, now, config.zone
    ) or schedule.next_shift(s, now, config.zone)


def cancel_request(s: Session, student: Identity, request_id: int, now: datetime) -> list[Notice]:
    request = s.get(HelpRequest, request_id)
    if request is None or request.student_id != student.user_id:
        raise NotFound(_("That request was not found."))
    notices = _close_request(s, request_id, RequestStatus.CANCELLED, now)
    if notices is None:
        raise Conflict(_("That request is no longer waiting."))
    return notices


# State changes below are conditional UPDATEs ("... WHERE status = 'waiting'"), so two processes
# racing (a helper accepting while the student cancels, an offer expiring while it is accepted)
# cannot both win: the loser changes nothing and is told so.


def _close_request(
    s: Session, request_id: int, status: RequestStatus, now: datetime
) -> list[Notice] | None:
    """End a waiting request and withdraw its offers; None if it was no longer waiting."""
    closed = s.execute(
        update(HelpRequest)
        .where(HelpRequest.id == request_id, HelpRequest.status == RequestStatus.WAITING)
        .values(status=status, ended_at=now)
    )
    if closed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return _withdraw_offers(s, Offer.request_id == request_id, now)


def _move_offers(s: Session, where: Any, to: OfferStatus, now: datetime) -> list[Offer]:
    """Move the pending offers matching `where` to `to`; the ones moved."""
    return list(
        s.scalars(
            update(Offer)
            .where(where, Offer.status == OfferStatus.PENDING)
            .values(status=to, answered_at=now)
            .returning(Offer)
        )
    )


def _withdraw_offers(s: Session, where: Any, now: datetime) -> list[Notice]:
    return [
        Notice(o.helper_id, "offer:expired", {"offer_id": o.id, "reason": "withdrawn"})
        for o in _move_offers(s, where, OfferStatus.WITHDRAWN, now)
    ]


def student_gone(s: Session, student_id: int, now: datetime) -> None:
    s.execute(
        update(HelpRequest)
        .where(HelpRequest.student_id == student_id, HelpRequest.status == RequestStatus.WAITING)
        .values(offline_since=now)
    )


def student_back(s: Session, student_id: int, config: HubConfig, now: datetime) -> list[Notice]:
    """The state a reconnecting student gets back: its waiting request's place, or its room."""
    request = open_request_of(s, student_id)
    if request is not None:
        request.offline_since = None
        status = queue_status(s, request, config, now)
        request.told_position, request.told_eta_s = status["position"], status["eta_s"]
        return [Notice(student_id, "queue:update", {"request_id": request.id, **status})]
    return _rejoin_notices(s, student_id)


# ---------------------------------------------------------------------------------------------
# Helpers


def set_duty(s: Session, helper: Identity, status: DutyStatus, now: datetime) -> list[Notice]:
    if status != DutyStatus.OFF:  # going off is always allowed
        accounts.check_may_go_on_duty(s, helper.user_id, now)
    # One UPDATE where the helper has a duty row (all but the first time): a helper becoming
    # available is idle from now, otherwise the time they became free stays.
    idle_since = (
        case((HelperDuty.status != DutyStatus.AVAILABLE, now), else_=HelperDuty.idle_since)
        if status == DutyStatus.AVAILABLE
        else HelperDuty.idle_since
    )
    changed = s.execute(
        update(HelperDuty)
        .where(HelperDuty.helper_id == helper.user_id)
        .values(status=status, idle_since=idle_since)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount == 0:  # type: ignore[attr-defined]
        s.add(HelperDuty(helper_id=helper.user_id, status=status, idle_since=now))
        s.flush()
    if status != DutyStatus.AVAILABLE:
        return _withdraw_offers(s, Offer.helper_id == helper.user_id, now)
    return []


def duty_of(s: Session, helper_id: int) -> DutyStatus:
    duty = s.get(HelperDuty, helper_id)
    return DutyStatus(duty.status) if duty else DutyStatus.OFF


def helper_gone(s: Session, helper_id: int, now: datetime) -> None:
    """The helper's last connection closed: off duty (a room keeps them busy), offers move on."""
    s.execute(
        update(HelperDuty)
        .where(HelperDuty.helper_id == helper_id, HelperDuty.status != DutyStatus.BUSY)
        .values(status=DutyStatus.OFF)
    )
    _withdraw_offers(s, Offer.helper_id == helper_id, now)


def helper_free(s: Session, helper_id: int, now: datetime) -> list[Notice]:
    """The helper's room ended: paused (off if no longer connected) until they choose again."""
    connected = s.scalar(select(func.count()).where(Connection.user_id == helper_id))
    duty = DutyStatus.PAUSED if connected else DutyStatus.OFF
    s.execute(
        update(HelperDuty)
        .where(HelperDuty.helper_id == helper_id, HelperDuty.status == DutyStatus.BUSY)
        .values(status=duty, idle_since=now)
    )
    return [Notice(helper_id, "duty:status", {"status": duty.value})]


@rooms.room_ended.connect
def _free_the_helper(s: Session, room: Room, now: datetime) -> list[Notice]:
    """Rooms tells matching, which owns the helpers' duty, that a room ended."""
    return helper_free(s, room.helper_id, now)


def take_off_duty(
    s: Session, helper_id: int, now: datetime, message: str | None = None
) -> list[Notice]:
    """Off duty at once, e.g. when deactivated or no longer approved; pending offers move on.
    `message` tells the helper why (the helper station shows it)."""
    s.execute(
        update(HelperDuty).where(HelperDuty.helper_id == helper_id).values(status=DutyStatus.OFF)
    )
    withdrawn = _withdraw_offers(s, Offer.helper_id == helper_id, now)
    status: dict[str, Any] = {
        "status": DutyStatus.OFF.value,
        "refusal": accounts.duty_refusal_reason(s, helper_id, now),
    }
    if message is not None:
        status["message"] = message
    return [Notice(helper_id, "duty:status", status), *withdrawn]


def helper_back(s: Session, helper_id: int, now: datetime) -> list[Notice]:
    """A reconnecting helper gets back its duty status (and why it may not go on duty, if so),
    its pending offer, or its room."""
    status = {
        "status": duty_of(s, helper_id).value,
        "refusal": accounts.duty_refusal_reason(s, helper_id, now),
    }
    notices = [Notice(helper_id, "duty:status", status)]
    offer = s.scalar(
        select(Offer).where(Offer.helper_id == helper_id, Offer.status == OfferStatus.PENDING)
    )
    if offer is not None:
        notices.append(_offer_notice(s, offer, offer.created_at))
    return notices + _rejoin_notices(s, helper_id)


def _answer_offer(
    s: Session, helper: Identity, offer_id: int, to: OfferStatus, now: datetime
) -> Offer:
    moved = _move_offers(
        s,
        (Offer.id == offer_id) & (Offer.helper_id == helper.user_id) & (Offer.expires_at > now),
        to,
        now,
    )
    if moved:
        return moved[0]
    # Only when refused: whose offer it was tells "not found" from "too late".
    if s.scalar(select(Offer.helper_id).where(Offer.id == offer_id)) != helper.user_id:
        raise NotFound(_("That offer was not found."))
    raise Conflict(_("That offer has expired or was withdrawn."))


def accept_offer(
    s: Session, helper: Identity, offer_id: int, now: datetime, ice: list[dict[str, Any]]
) -> tuple[Room, dict[str, Any], list[Notice]]:
    """The room opened, what the helper is told of the student, and the student's `match`."""
    offer = _answer_offer(s, helper, offer_id, OfferStatus.ACCEPTED, now)
    # The request as it is now, in the session (hub.metrics reads its wait from it).
    request = s.scalar(
        update(HelpRequest)
        .where(HelpRequest.id == offer.request_id, HelpRequest.status == RequestStatus.WAITING)
        .values(status=RequestStatus.MATCHED, ended_at=now)
        .returning(HelpRequest)
    )
    if request is None:
        raise Conflict(_("The student is no longer waiting."))  # rolls back the acceptance
    student_id = request.student_id
    _withdraw_offers(s, Offer.request_id == offer.request_id, now)
    room = rooms.open_room(s, offer.request_id, student_id, helper.user_id, now)
    s.execute(
        update(HelperDuty)
        .where(HelperDuty.helper_id == helper.user_id)
        .values(status=DutyStatus.BUSY)
    )
    # Both members in one query, for what each is told of the other (rooms.room_peer finds them
    # in the session while `members` holds them); their skills are not needed and not loaded.
    members = s.scalars(
        select(User)
        .where(User.id.in_([student_id, helper.user_id]))
        .options(lazyload(User.subjects), lazyload(User.languages))
    ).all()
    assert len(members) == 2
    match = {
        "room_id": room.id,
        "peer": rooms.room_peer(s, room, student_id),
        "ice_servers": ice,
    }
    return room, rooms.room_peer(s, room, helper.user_id), [Notice(student_id, "match", match)]


def decline_offer(s: Session, helper: Identity, offer_id: int, now: datetime) -> None:
    _answer_offer(s, helper, offer_id, OfferStatus.DECLINED, now)


def _rejoin_notices(s: Session, user_id: int) -> list[Notice]:
    room = rooms.open_room_of(s, user_id)
    if room is None:
        return []
    peer = rooms.room_peer(s, room, user_id)
    return [Notice(user_id, "room:rejoined", {"room_id": room.id, "peer": peer})]


# ---------------------------------------------------------------------------------------------
# The dispatcher's pass


def dispatch(s: Session, now: datetime, config: HubConfig) -> list[Notice]:
    """One pass of the matching loop: expire offers, drop students gone too long and make new
    offers. Safe to run from any process at any time. Places in the queue are `changed_places`."""
    notices = _expire_offers(s, now)
    notices += _drop_absent_students(s, now, config)
    return notices + offer_free_helpers(s, now, config)


def offer_free_helpers(s: Session, now: datetime, config: HubConfig) -> list[Notice]:
    """Offer every free helper without an offer the oldest request they can take."""
    free = [h for h, _free in _on_duty_skills(s, free_only=True)]
    return _make_offers(s, free, now, config) if free else []


# Unoffered requests are planned in chunks, oldest first, until every free helper has an offer.
# The first chunk is small: a pass usually has one or two helpers to place and the oldest request
# they can take is near the front. Later chunks grow, so a helper who can take only rare requests
# does not cost a query per few requests.
FIRST_OFFER_CHUNK = 20
OFFER_CHUNK_GROWTH = 4


# What the policy reads of a waiting request (plain rows, not ORM objects: the queue is long).
_POLICY_COLUMNS = (
    HelpRequest.id,
    HelpRequest.student_id,
    HelpRequest.subject_id,
    HelpRequest.grade,
    HelpRequest.language_code,
)


def _make_offers(
    s: Session, free: list[policy.HelperSkills], now: datetime, config: HubConfig
) -> list[Notice]:
    offered = select(Offer.request_id).where(Offer.status == OfferStatus.PENDING)
    # With what an offer tells the helper, so that making one reads nothing more (but the files,
    # for a request that has any).
    has_files = select(Attachment.id).where(Attachment.request_id == HelpRequest.id).exists()
    unoffered = (
        select(
            *_POLICY_COLUMNS,
            HelpRequest.created_at,
            HelpRequest.note,
            User.display_name,
            has_files.label("has_files"),
        )
        .join(User, User.id == HelpRequest.student_id)
        .where(HelpRequest.status == RequestStatus.WAITING, HelpRequest.id.not_in(offered))
        .order_by(HelpRequest.created_at, HelpRequest.id)
    )
    made: list[tuple[Offer, PlainRow]] = []
    remaining = list(free)
    size = FIRST_OFFER_CHUNK
    while remaining:
        chunk = s.execute(unoffered.limit(size)).all()
        if not chunk:
            break
        last = chunk[-1]  # the next chunk starts after it (offers made here leave `unoffered`)
        unoffered = unoffered.where(
            (HelpRequest.created_at > last.created_at)
            | ((HelpRequest.created_at == last.created_at) & (HelpRequest.id > last.id))
        )
        size *= OFFER_CHUNK_GROWTH
        by_id = {r.id: r for r in chunk}
        for request_id, helper_id in policy.plan_offers(_with_history(s, chunk), remaining):
            offer = Offer(
                request_id=request_id,
                helper_id=helper_id,
                created_at=now,
                expires_at=now + timedelta(seconds=config.offer_timeout_s),
            )
            s.add(offer)
            made.append((offer, by_id[request_id]))
            remaining = [h for h in remaining if h.id != helper_id]
    s.flush()  # every offer of the pass in one INSERT
    return [
        _offer_notice_of(offer, request, _files(s, request.id) if request.has_files else [], now)
        for offer, request in made
    ]


def next_deadline(s: Session) -> datetime | None:
    """When the next pending offer expires, so the dispatcher can wake in time."""
    return s.scalar(select(func.min(Offer.expires_at)).where(Offer.status == OfferStatus.PENDING))


def _expire_offers(s: Session, now: datetime) -> list[Notice]:
    """Expired offers move on; a helper who missed one is paused, since they are likely away."""
    expired = _move_offers(s, Offer.expires_at <= now, OfferStatus.EXPIRED, now)
    helper_ids = {o.helper_id for o in expired}
    if helper_ids:
        s.execute(
            update(HelperDuty)
            .where(HelperDuty.helper_id.in_(helper_ids), HelperDuty.status == DutyStatus.AVAILABLE)
            .values(status=DutyStatus.PAUSED)
        )
    return [
        Notice(o.helper_id, "offer:expired", {"offer_id": o.id, "reason": "expired"})
        for o in expired
    ] + [Notice(h, "duty:status", {"status": DutyStatus.PAUSED.value}) for h in helper_ids]


def _drop_absent_students(s: Session, now: datetime, config: HubConfig) -> list[Notice]:
    cutoff = now - timedelta(seconds=config.student_grace_s)
    gone = s.scalars(
        select(HelpRequest.id).where(
            HelpRequest.status == RequestStatus.WAITING, HelpRequest.offline_since <= cutoff
        )
    ).all()
    notices: list[Notice] = []
    for request_id in gone:
        notices += _close_request(s, request_id, RequestStatus.LEFT, now) or []
    return notices


def _offer_notice(s: Session, offer: Offer, now: datetime) -> Notice:
    request = s.execute(
        select(
            HelpRequest.id,
            HelpRequest.subject_id,
            HelpRequest.grade,
            HelpRequest.language_code,
            HelpRequest.note,
            HelpRequest.created_at,
            User.display_name,
        )
        .join(User, User.id == HelpRequest.student_id)
        .where(HelpRequest.id == offer.request_id)
    ).one()
    return _offer_notice_of(offer, request, _files(s, request.id), now)


def _files(s: Session, request_id: int) -> Sequence[PlainRow]:
    return s.execute(
        select(Attachment.id, Attachment.mime)
        .where(Attachment.request_id == request_id)
        .order_by(Attachment.created_at, Attachment.id)
    ).all()


def _offer_notice_of(
    offer: Offer, request: PlainRow, files: Sequence[PlainRow], now: datetime
) -> Notice:
    """The `offer` a helper gets: the request (its subject, grade, language, note, the student's
    nickname and files) as read with it."""
    payload = {
        "offer_id": offer.id,
        "expires_in_s": max(0.0, (offer.expires_at - now).total_seconds()),
        "request": {
            "subject": request.subject_id,
            "grade": request.grade,
            "language": request.language_code,
            "note": request.note,
            "nickname": request.display_name,
            "attachments": [
                {"id": a.id, "mime": a.mime, "url": f"/api/attachments/{a.id}"} for a in files
            ],
            "waited_s": int((now - request.created_at).total_seconds()),
        },
    }
    return Notice(offer.helper_id, "offer", payload)


def _with_history(s: Session, requests: Sequence[PlainRow]) -> list[policy.WaitingRequest]:
    """Waiting requests with who declined them and the student's previous helper (one query:
    the declined offers and the students' rooms, told apart by `kind`)."""
    declined: dict[int, set[int]] = defaultdict(set)
    previous: dict[int, tuple[datetime, int]] = {}
    history = union_all(
        select(
            literal("declined").label("kind"),
            Offer.request_id.label("key"),
            Offer.helper_id,
            Offer.created_at,
        ).where(
            Offer.request_id.in_([r.id for r in requests]), Offer.status == OfferStatus.DECLINED
        ),
        select(literal("room"), Room.student_id, Room.helper_id, Room.created_at).where(
            Room.student_id.in_({r.student_id for r in requests})
        ),
    )
    for kind, key, helper_id, created_at in s.execute(history):
        if kind == "declined":
            declined[key].add(helper_id)
        elif key not in previous or created_at >= previous[key][0]:
            previous[key] = (created_at, helper_id)  # the latest room wins
    return [
        policy.WaitingRequest(
            r.id,
            r.student_id,
            r.subject_id,
            r.grade,
            r.language_code,
            r.created_at,
            previous[r.student_id][1] if r.student_id in previous else None,
            frozenset(declined[r.id]),
        )
        for r in requests
    ]


def _on_duty_skills(s: Session, free_only: bool = False) -> list[tuple[policy.HelperSkills, bool]]:
    """Every helper on duty with their skills, and whether they are free (available); with
    `free_only`, just the free ones without a pending offer (a pass reads no more than it needs:
    with hundreds on duty, loading everyone's skills was most of it)."""
    query = (
        select(
            HelperDuty.helper_id,
            HelperDuty.status,
            HelperDuty.idle_since,
            User.grade_min,
            User.grade_max,
        )
        .join(User, User.id == HelperDuty.helper_id)
        .where(HelperDuty.status.in_([DutyStatus.AVAILABLE, DutyStatus.BUSY]))
    )
    if free_only:
        offered = select(Offer.helper_id).where(Offer.status == OfferStatus.PENDING)
        query = query.where(
            HelperDuty.status == DutyStatus.AVAILABLE, HelperDuty.helper_id.not_in(offered)
        )
    rows = s.execute(query).all()
    ids = [r.helper_id for r in rows]
    subjects: dict[int, set[int]] = defaultdict(set)
    languages: dict[int, set[str]] = defaultdict(set)
    if ids:  # subjects and languages in one query: a row has one or the other
        skills = union_all(
            select(
                helper_subjects.c.user_id,
                helper_subjects.c.subject_id,
                cast(null(), String).label("language_code"),
            ).where(helper_subjects.c.user_id.in_(ids)),
            select(
                helper_languages.c.user_id,
                cast(null(), Integer),
                helper_languages.c.language_code,
            ).where(helper_languages.c.user_id.in_(ids)),
        )
        for uid, sid, code in s.execute(skills):
            if sid is not None:
                subjects[uid].add(sid)
            else:
                languages[uid].add(code)
    return [
        (
            policy.HelperSkills(
                r.helper_id,
                frozenset(subjects[r.helper_id]),
                r.grade_min,
                r.grade_max,
                frozenset(languages[r.helper_id]),
                r.idle_since,
            ),
            r.status == DutyStatus.AVAILABLE,
        )
        for r in rows
    ]


def typical_session_s(s: Session, config: HubConfig) -> int:
    """The median length of the last 50 finished sessions, or the configured guess."""
    rows = s.execute(
        select(Room.created_at, Room.ended_at)
        .where(Room.ended_at.is_not(None))
        .order_by(Room.ended_at.desc())
        .limit(50)
    ).all()
    if len(rows) < 3:
        return config.typical_session_s
    return int(statistics.median((r.ended_at - r.created_at).total_seconds() for r in rows))


@dataclass(frozen=True)
class Place:
    """A waiting student's place as told (policy.told_position) and estimate: a `queue:update`."""

    request_id: int
    student_id: int
    position: int
    eta_s: int | None


def waiting_in_order(s: Session) -> Sequence[PlainRow]:
    """Every waiting request, oldest first, with what its student was last told."""
    return s.execute(
        select(*_POLICY_COLUMNS, HelpRequest.told_position, HelpRequest.told_eta_s)
        .where(HelpRequest.status == RequestStatus.WAITING)
        .order_by(HelpRequest.created_at, HelpRequest.id)
    ).all()


@dataclass
class HelpAtHand:
    """Who is on duty and how long a session usually takes: what the wait estimates rest on."""

    on_duty: list[tuple[policy.HelperSkills, bool]]
    typical_session_s: int
    # (free, on duty) helpers able to take a request, by subject, grade and language: a queue of
    # thousands asks about a few dozen kinds of request.
    _able: dict[tuple[int, int, str | None], tuple[int, int]] = field(default_factory=dict)

    def wait_s(self, position: int, request: policy.Asking) -> int | None:
        """The estimated wait of `request` at `position` in its queue."""
        key = (request.subject_id, request.grade, request.language_code)
        if key not in self._able:
            able = [free for h, free in self.on_duty if policy.can_help(h, request)]
            self._able[key] = (sum(able), len(able))
        return policy.estimate_wait_s(position, *self._able[key], self.typical_session_s)


def help_at_hand(s: Session, config: HubConfig) -> HelpAtHand:
    return HelpAtHand(_on_duty_skills(s), typical_session_s(s, config))


def changed_places(
    waiting: Sequence[PlainRow], at_hand: HelpAtHand, pause: Callable[[], None]
) -> list[Place]:
    """Every waiting request whose told place (policy.told_position) or estimate differs from
    what its student was told.

    Calls `pause` between small steps, so that the caller can let other work go first: the
    places of thousands of students must not hold up an offer or an acknowledgement."""
    positions = policy.queue_positions(waiting)
    changed = []
    for r in waiting:
        pause()
        position = positions[r.id]
        told = (policy.told_position(position), at_hand.wait_s(position, r))
        if told != (r.told_position, r.told_eta_s):
            changed.append(Place(r.id, r.student_id, *told))
    return changed


def tell_places(s: Session, places: Sequence[Place]) -> list[Notice]:
    """Store what these students are told and return their `queue:update`s. Requests that stopped
    waiting since the queue was read are left out: their students are matched or gone. One
    conditional UPDATE for the whole chunk, whose RETURNING says which were still waiting."""
    if not places:
        return []
    positions = {p.request_id: p.position for p in places}
    etas = {p.request_id: p.eta_s for p in places}
    still_waiting = set(
        s.scalars(
            update(HelpRequest)
            .where(HelpRequest.id.in_(positions), HelpRequest.status == RequestStatus.WAITING)
            .values(
                # Cast: a chunk whose estimates are all None is a CASE of NULLs, text to PostgreSQL.
                told_position=cast(case(positions, value=HelpRequest.id), Integer),
                told_eta_s=cast(case(etas, value=HelpRequest.id), Integer),
            )
            .returning(HelpRequest.id)
            .execution_options(synchronize_session=False)
        )
    )
    return [
        Notice(
            p.student_id,
            "queue:update",
            {"request_id": p.request_id, "position": p.position, "eta_s": p.eta_s},
        )
        for p in places
        if p.request_id in still_waiting
    ]
