"""Attaching the assignment: checked by content, images re-encoded, shown only to the helper."""

from __future__ import annotations

import io

import requests
from PIL import Image

from tests.test_matching import on_duty


def png_with_secrets() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # camera make
    image.save(out, "PNG", exif=exif)
    return out.getvalue() + b"HIDDEN-PAYLOAD-AFTER-THE-IMAGE"


def upload(hub, username: str, data: bytes, filename: str = "opgave.png", mime: str = "image/png"):
    token = hub.token(username)
    return requests.post(
        hub.url + "/api/attachments",
        files={"file": (filename, data, mime)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_a_photo_is_re_encoded_without_hidden_data_and_reaches_the_offered_helper(hub):
    r = upload(hub, "student1", png_with_secrets())
    assert r.status_code == 201, r.text
    attachment = r.json()
    assert attachment["mime"] == "image/jpeg"
    student, helper = hub.client("student1"), hub.client("helper1")
    on_duty(helper)
    student.ok(
        "help:request", {"subject": 1, "grade": 9, "attachment_ids": [attachment["attachment_id"]]}
    )
    offered = helper.wait_for("offer")["request"]["attachments"]
    assert [a["id"] for a in offered] == [attachment["attachment_id"]]

    seen = requests.get(
        hub.url + offered[0]["url"],
        headers={"Authorization": f"Bearer {hub.token('helper1')}"},
        timeout=5,
    )
    assert seen.status_code == 200 and seen.headers["Content-Type"] == "image/jpeg"
    assert b"HIDDEN-PAYLOAD" not in seen.content and b"SecretCam" not in seen.content
    assert Image.open(io.BytesIO(seen.content)).size == (64, 48)

    other = requests.get(
        hub.url + offered[0]["url"],
        headers={"Authorization": f"Bearer {hub.token('helper2')}"},
        timeout=5,
    )
    assert other.status_code == 404


def test_a_pdf_is_accepted_as_it_is(hub):
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    r = upload(hub, "student1", pdf, "opgave.pdf", "application/pdf")
    assert r.status_code == 201 and r.json()["mime"] == "application/pdf"


def test_files_are_judged_by_content_not_by_name(hub):
    r = upload(hub, "student1", b"#!/bin/sh\necho not a picture\n", "photo.png", "image/png")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid" and r.json()["error"]["message"]


def test_a_file_over_the_limit_is_refused_with_the_limit_named(hub):
    r = upload(hub, "student1", b"%PDF-" + b"0" * (9 * 1024 * 1024))
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_only_students_upload_and_someone_elses_attachment_cannot_be_used(hub):
    assert upload(hub, "helper1", png_with_secrets()).status_code == 403
    attachment_id = upload(hub, "student1", png_with_secrets()).json()["attachment_id"]
    answer = hub.client("student2").call(
        "help:request", {"subject": 1, "grade": 9, "attachment_ids": [attachment_id]}
    )
    assert answer["error"]["code"] == "invalid"
    r = requests.get(
        f"{hub.url}/api/attachments/{attachment_id}",
        headers={"Authorization": f"Bearer {hub.token('student2')}"},
        timeout=5,
    )
    assert r.status_code == 404
