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
    photo: bytes | None = None  # the JPEG as taken; the hub makes the scan of it
    photo_image: pygame.Surface | None = None  # the photo as taken
    scan_image: pygame.Surface | None = None  # the kiosk's scan of it (None: no page found)
    keep_original: bool = False  # "Use the original": the hub stores the photo as it is

    def shown(self) -> pygame.Surface | None:
        """The picture the helper will see: the scan, unless the student keeps the original."""
        if self.scan_image is not None and not self.keep_original:
            return self.scan_image
        return self.photo_image
