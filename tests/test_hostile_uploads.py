"""Hostile uploads: files whose bytes lie about what they are, polyglots, decompression bombs,
huge pictures, damaged ones, and names that try to climb out of the attachments folder. Each is
refused with a clear error in the student's language (Danish unless they chose), leaving no file
and no row behind, or is re-encoded by its content so nothing hidden in it survives."""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from pathlib import Path

import requests
from PIL import Image
from sqlalchemy import func, select

from hub.attachments.models import Attachment
from tests.test_attachments import upload

ZIP_MARK = b"evil.html"
HTML_MARK = b"<script>alert(1)</script>"


def jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, "JPEG")
    return out.getvalue()


def png(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, "PNG")
    return out.getvalue()


def mpo() -> bytes:
    out = io.BytesIO()
    first, second = Image.new("RGB", (64, 48), "red"), Image.new("RGB", (64, 48), "blue")
    first.save(out, "MPO", save_all=True, append_images=[second])
    return out.getvalue()


def tiff() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "TIFF")
    return out.getvalue()


def png_declaring(width: int, height: int, rows: int = 0) -> bytes:
    """A PNG whose header declares width × height, with `rows` rows of pixels after it (a few
    hundred bytes either way)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    pixels = chunk(b"IDAT", zlib.compress(b"\x00" * (width * 3 + 1) * rows, 9)) if rows else b""
    return b"\x89PNG\r\n\x1a\n" + header + pixels + chunk(b"IEND", b"")


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("evil.html", HTML_MARK)
    return out.getvalue()


def pdf(body: bytes, version: bytes = b"1.4") -> bytes:
    return b"%PDF-" + version + b"\n" + body + b"\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def object_stream(objects: bytes) -> bytes:
    """A PDF 1.5 object stream: the objects compressed, where a byte scan cannot see them."""
    packed = zlib.compress(objects)
    return (
        b"5 0 obj\n<</Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length "
        + str(len(packed)).encode()
        + b">>\nstream\n"
        + packed
        + b"\nendstream\nendobj"
    )


ONLY_PHOTOS = "Du kan kun vedhæfte billeder (JPEG, PNG, WebP) og PDF-filer."
TOO_BIG = "Billedet er for stort: højst 40 megapixel."
DAMAGED = "Billedet er beskadiget eller ufuldstændigt."
ACTIVE_PDF = "Denne PDF-fil indeholder scripts, vedhæftede filer eller en webside"
SCRIPT = b"/OpenAction<</S/JavaScript/JS(app.alert(1))>>"

# (what it is, its bytes, the type the browser declares, the start of the Danish answer)
REFUSED = [
    ("an empty file", b"", "image/png", "Filen er tom."),
    (
        "a web page named as a photo",
        b"<!doctype html><html>" + HTML_MARK,
        "image/jpeg",
        ONLY_PHOTOS,
    ),
    (
        "an SVG with a script",
        b"<svg xmlns='http://www.w3.org/2000/svg'>" + HTML_MARK,
        "image/svg+xml",
        ONLY_PHOTOS,
    ),
    ("a ZIP archive", zip_archive(), "image/png", ONLY_PHOTOS),
    ("a program", b"\x7fELF\x02\x01\x01" + b"\x00" * 200, "application/pdf", ONLY_PHOTOS),
    ("a TIFF (a decoder not let in)", tiff(), "image/tiff", ONLY_PHOTOS),
    (
        "a 50000 × 50000 PNG: Pillow's DecompressionBombError",
        png_declaring(50000, 50000, rows=4),
        "image/png",
        TOO_BIG,
    ),
    (
        "a 10000 × 6000 PNG: past the hub's own limit, under Pillow's",
        png_declaring(10000, 6000, rows=2),
        "image/png",
        TOO_BIG,
    ),
    ("a real 8000 × 6000 picture of 50 kB", png((8000, 6000), "L"), "image/png", TOO_BIG),
    ("a truncated JPEG", jpeg((400, 300))[:300], "image/jpeg", DAMAGED),
    ("a truncated PNG", png((400, 300))[:200], "image/png", DAMAGED),
    (
        "a PDF without its end",
        b"%PDF-1.4\n1 0 obj<<>>endobj\n",
        "application/pdf",
        "PDF-filen er beskadiget",
    ),
    (
        "a PDF that runs JavaScript when opened",
        pdf(b"1 0 obj<</Type/Catalog" + SCRIPT + b">>endobj"),
        "application/pdf",
        ACTIVE_PDF,
    ),
    (
        "a PDF hiding /JavaScript as /J#61vaScript",
        pdf(b"1 0 obj<</Type/Catalog/OpenAction<</S/J#61vaScript/JS(1)>>>>endobj"),
        "application/pdf",
        ACTIVE_PDF,
    ),
    (
        "a PDF with JavaScript in a compressed object stream",
        pdf(object_stream(b"1 0 <</Type/Catalog" + SCRIPT + b">>"), b"1.5"),
        "application/pdf",
        ACTIVE_PDF,
    ),
    (
        "a PDF with an attached file",
        pdf(b"1 0 obj<</Type/Catalog/Names<</EmbeddedFiles 2 0 R>>>>endobj"),
        "application/pdf",
        ACTIVE_PDF,
    ),
    (
        "a PDF that launches a program",
        pdf(b"1 0 obj<</S/Launch/F(cmd.exe)>>endobj"),
        "application/pdf",
        ACTIVE_PDF,
    ),
    (
        "a PDF that is also a web page",
        pdf(b"<html><body>" + HTML_MARK + b"</body></html>"),
        "text/html",
        ACTIVE_PDF,
    ),
    (
        "a PDF whose object stream unpacks to 200 MB",
        pdf(
            b"5 0 obj\n<</Type/ObjStm/Filter/FlateDecode>>\nstream\n"
            + zlib.compress(b"0" * 200 * 1024 * 1024, 9)
            + b"\nendstream\nendobj",
            b"1.5",
        ),
        "application/pdf",
        "PDF-filen er for indviklet",
    ),
]


def stored(hub) -> tuple[int, list[str]]:
    """Rows in attachments, and the files in the hub's attachments folder."""
    with hub.db.transaction() as s:
        rows = s.scalar(select(func.count()).select_from(Attachment)) or 0
    folder = hub.data_dir / "attachments"
    return rows, sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_hostile_files_are_refused_in_danish_and_leave_nothing_behind(hub):
    before = stored(hub)
    for what, data, declared, danish in REFUSED:
        r = upload(hub, "student1", data, "opgave", declared)
        assert r.status_code == 400, (what, r.status_code, r.text)
        answer = r.json()
        assert answer["ok"] is False and answer["error"]["code"] == "invalid", what
        assert answer["error"]["message"].startswith(danish), (what, answer["error"]["message"])
        assert stored(hub) == before, f"{what}: something was kept"
    english = requests.post(
        hub.url + "/api/attachments",
        files={"file": ("x.png", png_declaring(50000, 50000), "image/png")},
        headers={"Authorization": f"Bearer {hub.token('student1')}", "Accept-Language": "en"},
        timeout=10,
    )
    assert english.json()["error"]["message"].startswith("The picture is too large")
    assert hub.process.poll() is None


def served(hub, attachment_id: str) -> requests.Response:
    return requests.get(
        f"{hub.url}/api/attachments/{attachment_id}",
        headers={"Authorization": f"Bearer {hub.token('student1')}"},
        timeout=10,
    )


def test_polyglots_and_mislabelled_files_are_kept_only_as_what_their_content_is(hub):
    cases = [
        ("a JPEG that is also a ZIP", jpeg() + zip_archive(), "image/jpeg", "image/jpeg"),
        ("a JPEG that is also a web page", jpeg() + HTML_MARK, "text/html", "image/jpeg"),
        ("a PNG declared as a PDF", png(), "application/pdf", "image/jpeg"),
        # a phone camera's multi-picture JPEG (Pillow says MPO), refused before as no photo
        ("a phone's MPO photo", mpo(), "image/jpeg", "image/jpeg"),
        (
            "a plain PDF declared as a photo",
            pdf(b"1 0 obj<</Type/Catalog>>endobj"),
            "image/png",
            "application/pdf",
        ),
    ]
    for what, data, declared, kept_as in cases:
        r = upload(hub, "student1", data, "opgave", declared)
        assert r.status_code == 201, (what, r.text)
        assert r.json()["mime"] == kept_as, what
        seen = served(hub, r.json()["attachment_id"])
        assert seen.headers["Content-Type"] == kept_as, what
        assert seen.headers["X-Content-Type-Options"] == "nosniff", what
        if kept_as == "image/jpeg":  # decoded and re-encoded: only the picture is left
            assert ZIP_MARK not in seen.content and HTML_MARK not in seen.content, what
            assert Image.open(io.BytesIO(seen.content)).format == "JPEG", what


def test_the_name_a_file_comes_with_is_never_used(hub):
    names = [
        "../../../../tmp/escaped.png",
        "..\\..\\windows\\win.ini",
        "/etc/passwd",
        "opgave\x00.png",
        "a" * 5000 + ".png",
        "\u202egnp.exe",  # shows as "exe.png" right to left
        "",
    ]
    folder = hub.data_dir / "attachments"
    for name in names:
        r = upload(hub, "student1", png(), name, "image/png")
        assert r.status_code == 201, (name[:40], r.text)
        assert set(r.json()) == {"ok", "attachment_id", "mime", "size"}
        assert re.fullmatch(r"[0-9a-f]{32}", r.json()["attachment_id"])
        assert (folder / r.json()["attachment_id"]).is_file()
    assert all(re.fullmatch(r"[0-9a-f]{32}", p.name) for p in folder.iterdir())
    assert not Path("/tmp/escaped.png").exists()
    created = {p.name for p in hub.data_dir.rglob("*")}
    assert not created & {"escaped.png", "win.ini", "passwd", "opgave.png", "exe.png"}
    with hub.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Attachment)) == len(names)
