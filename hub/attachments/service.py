"""Checking and storing attachments. Files are judged by their content, never their name:
images are decoded and re-encoded (dropping metadata such as GPS position and anything hidden
after the picture); PDFs must look like PDFs. Everything else is refused."""

from __future__ import annotations

import errno
import io
import secrets
from datetime import datetime
from pathlib import Path

from flask_babel import gettext as _
from PIL import Image, UnidentifiedImageError
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from hub.accounts.access import Identity
from hub.accounts.models import Role
from hub.attachments.models import Attachment
from hub.errors import Invalid, NotFound, StorageFull, TooLarge
from hub.matching.models import HelpRequest, Offer
from hub.rooms.models import Room

MAX_PIXELS = 40_000_000  # refuses decompression bombs
MAX_SIDE = 2400  # photos are scaled down to this; enough to read a worksheet


def clean_upload(data: bytes, max_bytes: int) -> tuple[bytes, str]:
    """The bytes to store and their MIME type, or an error saying what is wrong."""
    if not data:
        raise Invalid(_("The file is empty."))
    if len(data) > max_bytes:
        raise TooLarge(
            _("The file is too large. The limit is %(mb)d MB.", mb=max_bytes // (1024 * 1024))
        )
    if data.startswith(b"%PDF-"):
        if b"%%EOF" not in data[-2048:]:
            raise Invalid(_("The PDF file is damaged or incomplete."))
        return data, "application/pdf"
    return _reencode_image(data), "image/jpeg"


def _reencode_image(data: bytes) -> bytes:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in ("JPEG", "PNG", "WEBP", "GIF", "HEIF", "BMP"):
                raise Invalid(_("Only photos (JPEG, PNG, WebP) and PDF files can be attached."))
            img.load()
            picture = _upright(img).convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise Invalid(_("Only photos (JPEG, PNG, WebP) and PDF files can be attached.")) from exc
    picture.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def _upright(img: Image.Image) -> Image.Image:
    from PIL import ImageOps

    return ImageOps.exif_transpose(img) or img


def store(
    s: Session, owner: Identity, data: bytes, mime: str, folder: Path, now: datetime
) -> Attachment:
    attachment = Attachment(
        id=secrets.token_hex(16), owner_id=owner.user_id, mime=mime, size=len(data), created_at=now
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / attachment.id
    try:
        path.write_bytes(data)
    except OSError as exc:
        path.unlink(missing_ok=True)  # a disk that filled up mid-write leaves no half file
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(
                _("There is no room for the file right now. Please try again later.")
            ) from exc
        raise
    s.add(attachment)
    return attachment


def readable(s: Session, viewer: Identity, attachment_id: str) -> Attachment:
    """The attachment if `viewer` may see it: its owner, a helper it was offered to or who helps in
    its room, or an admin."""
    attachment = s.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound(_("That file was not found."))
    if viewer.role == Role.ADMIN or attachment.owner_id == viewer.user_id:
        return attachment
    if viewer.role == Role.HELPER and attachment.request_id is not None:
        offered = s.scalar(
            select(Offer.id).where(
                Offer.request_id == attachment.request_id, Offer.helper_id == viewer.user_id
            )
        )
        in_room = s.scalar(
            select(Room.id).where(
                Room.request_id == attachment.request_id, Room.helper_id == viewer.user_id
            )
        )
        if offered is not None or in_room is not None:
            return attachment
    raise NotFound(_("That file was not found."))


def attach_to_request(
    s: Session, owner_id: int, attachment_ids: list[str], request_id: int
) -> None:
    """Tie a student's uploads to their new request; refused if one is not theirs or is in use."""
    attachments = list(s.scalars(select(Attachment).where(Attachment.id.in_(attachment_ids))))
    if len(attachments) != len(set(attachment_ids)) or any(
        a.owner_id != owner_id or a.request_id is not None for a in attachments
    ):
        raise Invalid(_("An attachment was not found."), fields={"attachment_ids": "unknown"})
    for a in attachments:
        a.request_id = request_id


def delete_of_request(s: Session, request_id: int, folder: Path) -> None:
    """Delete the files of a request, e.g. when the room's retention period is over."""
    _delete(s, folder, Attachment.request_id == request_id)


def delete_unused_of(s: Session, owner_id: int, folder: Path) -> None:
    """Delete the uploads of a student that no request uses (a kiosk visit ended)."""
    _delete(s, folder, Attachment.owner_id == owner_id, Attachment.request_id.is_(None))


def delete_unused_before(s: Session, created_before: datetime, folder: Path) -> int:
    """Delete the uploads never attached to a request (the student gave up); how many."""
    return _delete(
        s, folder, Attachment.request_id.is_(None), Attachment.created_at < created_before
    )


def _delete(s: Session, folder: Path, *where: ColumnElement[bool]) -> int:
    found = list(s.scalars(select(Attachment).where(*where)))
    for attachment in found:
        (folder / attachment.id).unlink(missing_ok=True)
        s.delete(attachment)
    return len(found)


def request_of(s: Session, attachment: Attachment) -> HelpRequest | None:
    return s.get(HelpRequest, attachment.request_id) if attachment.request_id else None
