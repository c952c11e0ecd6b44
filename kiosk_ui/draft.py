"""What the student has chosen in this visit that the hub does not hold yet."""

from __future__ import annotations

from dataclasses import dataclass

import pygame


@dataclass
class Draft:
    """Filled in screen by screen (nickname and grade, subject and language, photo, note). Wiped
    with the visit (a new Draft), like everything else of it."""

    nickname: str = ""
    grade: int | None = None
    subject_id: int | None = None
    language: str | None = None
    note: str = ""
    photo: bytes | None = None
    photo_image: pygame.Surface | None = None
