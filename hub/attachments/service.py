"""Checking and storing attachments. Files are judged by their content, never their name or the
type the browser declared: images are decoded and re-encoded (dropping metadata such as GPS
position and anything hidden after the picture, e.g. a ZIP or HTML of a polyglot), after their
declared size is checked, so a small file that unpacks to a huge picture is refused unread; PDFs
must look like PDFs, with no scripts, launch actions, attached files or web page inside (a
helper opens them). Everything else is refused. The name a file came with is never used.
A photo of a worksheet is stored as a scan of the page (pagescan: flattened, evened
out); a photo in which no page is found is stored as it is, re-encoded."""

from __future__ import annotations

import errno
import io
import re
import secrets
import zlib
from datetime import datetime
from pathlib import Path

import numpy as np
from flask_babel import gettext as _
from PIL import Image, UnidentifiedImageError
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

import pagescan
from hub.accounts.access import Identity
from hub.accounts.models import Role
from hub.attachments.models import Attachment
from hub.errors import Invalid, NotFound, StorageFull, TooLarge
from hub.matching.models import HelpRequest, Offer
from hub.rooms.models import Room

MAX_PIXELS = 40_000_000  # a bigger picture is refused before it is decoded (decompression bombs)
MAX_SIDE = 2400  # photos are scaled down to this; enough to read a worksheet
# What Pillow may open at all (not TIFF, EPS, PSD, ICO, ...: each decoder is attack surface).
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8")

# PDF names that run something or carry something: JavaScript, launching programs, attached
# files, Flash/video, XML forms, form submission, actions on open/close of a page.
PDF_ACTIVE = re.compile(
    rb"/(?:JavaScript|JS|Launch|EmbeddedFiles?|RichMedia|XFA|SubmitForm|ImportData|GoToE|AA)"
    rb"(?![A-Za-z0-9#])"
)
PDF_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")  # /J#61vaScript is /JavaScript
# A web page at the start of a "PDF" (where browsers sniff): a PDF/HTML polyglot.
MARKUP = re.compile(rb"<\s*(?:!doctype|html|head|body|script|iframe|svg|object|embed)\b", re.I)
PDF_OBJECT_STREAM = re.compile(rb"/Type\s*/ObjStm\b")
PDF_INFLATED_MAX = 32 * 1024 * 1024  # of object streams, in all; past it the PDF is refused


def clean_upload(data: bytes, max_bytes: int, scan: bool = True) -> tuple[bytes, str]:
    """The bytes to store and their MIME type, or an error saying what is wrong. A photo of a
    page is stored as its scan unless `scan` is False (the student chose the original)."""
    if not data:
        raise Invalid(_("The file is empty."))
    if len(data) > max_bytes:
        raise TooLarge(
            _("The file is too large. The limit is %(mb)d MB.", mb=max_bytes // (1024 * 1024))
        )
    if data.startswith(b"%PDF-"):
        _check_pdf(data)
        return data, "application/pdf"
    return _reencode_image(data, scan), "image/jpeg"


def _check_pdf(data: bytes) -> None:
    if b"%%EOF" not in data[-2048:]:
        raise Invalid(_("The PDF file is damaged or incomplete."))
    active = _(
        "This PDF file contains scripts, attached files or a web page, so it cannot be attached. "
        "Save it again as a plain PDF, or take a photo of the page."
    )
    if MARKUP.search(data[:1024]):
        raise Invalid(active)
    for part in (data, *_object_streams(data)):
        if PDF_ACTIVE.search(PDF_NAME_ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), part)):
            raise Invalid(active)


def _object_streams(data: bytes) -> list[bytes]:
    """The inflated object streams of a PDF (PDF 1.5 packs dictionaries, actions too, into
    compressed streams), at most PDF_INFLATED_MAX in all."""
    found: list[bytes] = []
    budget = PDF_INFLATED_MAX
    for match in re.finditer(rb"stream\r?\n", data):
        head = data[max(0, match.start() - 512) : match.start()]
        if not PDF_OBJECT_STREAM.search(head.rsplit(b"obj", 1)[-1]):
            continue
        end = data.find(b"endstream", match.end())
        raw = data[match.end() : end if end >= 0 else len(data)]
        inflater = zlib.decompressobj()
        try:
            inflated = inflater.decompress(raw, budget + 1)
        except zlib.error:
            continue  # not Flate: nothing a reader could take actions from either
        budget -= len(inflated)
        if budget < 0 or inflater.unconsumed_tail:
            raise Invalid(
                _(
                    "The PDF file is too complex to check. Save it again as a plain PDF, "
                    "or take a photo of the page."
                )
            )
        found.append(inflated)
    return found


def _reencode_image(data: bytes, scan: bool) -> bytes:
    only_photos = _("Only photos (JPEG, PNG, WebP) and PDF files can be attached.")
    too_big = _(
        "The picture is too large: at most %(mp)d megapixels. Take the photo again with a "
        "lower resolution.",
        mp=MAX_PIXELS // 1_000_000,
    )
    try:
        img = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as exc:  # declared far past Pillow's own limit
        raise Invalid(too_big) from exc
    except (UnidentifiedImageError, OSError) as exc:
        if data.startswith(IMAGE_SIGNATURES):  # a photo's start, and too little after it
            raise Invalid(_("The picture is damaged or incomplete.")) from exc
        raise Invalid(only_photos) from exc
    with img:
        width, height = img.size
        if width * height > MAX_PIXELS:  # read from the header: nothing decoded yet
            raise Invalid(too_big)
        try:
            if img.format == "JPEG":
                img.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode at 1/2, 1/4, 1/8 when it can
            img.load()
            picture = _upright(img).convert("RGB")
        except Exception as exc:  # Pillow's decoders raise many kinds for broken data
            raise Invalid(_("The picture is damaged or incomplete.")) from exc
    picture.thumbnail((MAX_SIDE, MAX_SIDE))
    # A worksheet photo becomes a scan of the page.
    scanned = pagescan.scan(np.asarray(picture)) if scan else None
    if scanned is not None:
        picture = Image.fromarray(scanned)
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
