"""Simple drawn pictures: one per subject, the feedback faces and the memory game's shapes.
Drawn with pygame's primitives, so they scale to any button and need no image files."""

from __future__ import annotations

import math
from collections.abc import Callable

import pygame

from kiosk_ui.theme import Color

Icon = Callable[[pygame.Surface, pygame.Rect, Color], None]


def _w(rect: pygame.Rect, share: float = 0.07) -> int:
    return max(2, round(rect.w * share))


def math_signs(s: pygame.Surface, r: pygame.Rect, c: Color) -> None:
    w, half = _w(r), r.w // 4
    q = [r.x + r.w // 4, r.x + 3 * r.w // 4]
    p = [r.y + r.h // 4, r.y + 3 * r.h // 4]
    k = half * 2 // 3
    pygame.draw.line(s, c, (q[0] - k, p[0]), (q[0] + k, p[0]), w)  # plus
    pygame.draw.line(s, c, (q[0], p[0] - k), (q[0], p[0] + k), w)
    pygame.draw.line(s, c, (q[1] - k, p[0]), (q[1] + k, p[0]), w)  # minus
    pygame.draw.line(s, c, (q[0] - k, p[1] - k), (q[0] + k, p[1] + k), w)  # times
    pygame.draw.line(s, c, (q[0] - k, p[1] + k), (q[0] + k, p[1] - k), w)
    pygame.draw.line(s, c, (q[1] - k, p[1] - k // 2), (q[1] + k, p[1] - k // 2), w)  # equals
    pygame.draw.line(s, c, (q[1] - k, p[1] + k // 2), (q[1] + k, p[1] + k // 2), w)


def book(s: pygame.Surface, r: pygame.Rect, c: Color) -> None:
    w = _w(r, 0.05)
    mid, top, bottom = r.centerx, r.y + r.h // 5, r.bottom - r.h // 6
    left = [(mid, top + r.h // 12), (r.x + r.w // 12, top), (r.x + r.w // 12, bottom - r.h // 12)]
    left += [(mid, bottom)]
    right = [(2 * mid - x, y) for x, y in left]
    pygame.draw.polygon(s, c, left, w)
    pygame.draw.polygon(s, c, right, w)
    for i in range(1, 4):
        y = top + i * (bottom - top) // 5
        pygame.draw.line(s, c, (r.x + r.w // 5, y), (mid - r.w // 10, y + r.h // 30), w // 2 + 1)
        pygame.draw.line(
            s, c, (r.right - r.w // 5, y), (mid + r.w // 10, y + r.h // 30), w // 2 + 1
        )


def speech(s: pygame.Surface, r: pygame.Rect, c: Color) -> None:
    w = _w(r, 0.05)
    bubble = pygame.Rect(r.x + r.w // 10, r.y + r.h // 6, r.w * 8 // 10, r.h // 2)
    pygame.draw.rect(s, c, bubble, w, border_radius=r.w // 8)
    tail = [(bubble.x + r.w // 5, bubble.bottom - w), (bubble.x + r.w // 6, r.bottom - r.h // 8)]
    tail.append((bubble.x + r.w * 2 // 5, bubble.bottom - w))
    pygame.draw.polygon(s, c, tail)
    for i in range(3):
        x = bubble.x + bubble.w * (i + 1) // 4
        pygame.draw.circle(s, c, (x, bubble.centery), max(2, r.w // 18))


def speech_two(s: pygame.Surface, r: pygame.Rect, c: Color) -> None:
    """Two speech bubbles: a second foreign language."""
    small = pygame.Rect(r.x, r.y, r.w * 3 // 4, r.h * 3 // 4)
    speech(s, small, c)
    other = small.move(r.w // 4, r.h // 4)
    w = _w(r, 0.05)
    pygame.draw.rect(
        s,
        c,
        (other.x + other.w // 10, other.y + other.h // 6, other.w * 8 // 10, other.h // 2),
        w,
        border_radius=r.w // 10,
    )


def flask(s: pygame.Surface, r: pygame.Rect, c: Color) -> None:
    w = _w(r, 0.05)
    neck_l, neck_r = r.centerx - r.w // 10, r.centerx + r.w // 10
    top, shoulder, bottom = r.y + r.h // 8, r.y + r.h * 4 // 10, r.bottom - r.h // 10
    body = [
        (neck_l, top),
        (neck_l, shoulder),
        (r.x + r.w // 8, bottom),
        (r.right - r.w // 8, bottom),
    ]
    body += [(neck_r, shoulder), (neck_r, top)]
    pygame.draw.lines(s, c, False, body, w)
    pygame.draw.line(s, c, (neck_l - r.w // 14, top), (neck_r + r.w // 14, top), w)
    liquid = [(r.x + r.w * 2 // 9, bottom - r.h // 5), (r.right - r.w * 2 // 9, bottom - r.h // 5)]
    liquid += [(r.right - r.w // 8, bottom), (r.x + r.w // 8, bottom)]
    pygame.draw.polygon(s, c, liquid)
    pygame.draw.circle(
        s, c, (r.centerx - r.w // 20, shoulder + r.h // 10), max(2, r.w // 22), w // 2 + 1
    )
    pygame.draw.circle(
        s, c, (r.centerx + r.w // 14, shoulder - r.h // 20), max(2, r.w // 28), w // 2 + 1
    )


def leaf(s: pygame.Surface, r: pygame.Rect, c: Color) -> None:
    w = _w(r, 0.05)
    blade = pygame.Rect(0, 0, r.w * 5 // 10, r.h * 8 // 10)
    blade.center = r.center
    leafs = pygame.Surface(blade.size, pygame.SRCALPHA)
    pygame.draw.ellipse(leafs, c, leafs.get_rect(), w)
    pygame.draw.line(leafs, c, (blade.w // 2, 0), (blade.w // 2, blade.h), w)
    for i in range(1, 4):
        y = blade.h * i // 4
        pygame.draw.line(leafs, c, (blade.w // 2, y), (blade.w // 5, y - blade.h // 8), w // 2 + 1)
        pygame.draw.line(
            leafs, c, (blade.w // 2, y), (blade.w * 4 // 5, y - blade.h // 8), w // 2 + 1
        )
    turned = pygame.transform.rotate(leafs, -35)
    s.blit(turned, turned.get_rect(center=r.center))


def globe(s: pygame.Surface, r: pygame.Rect, c: Color) -> None:
    w = _w(r, 0.05)
    radius = min(r.w, r.h) * 4 // 10
    pygame.draw.circle(s, c, r.center, radius, w)
    pygame.draw.ellipse(s, c, (r.centerx - radius // 2, r.centery - radius, radius, 2 * radius), w)
    pygame.draw.line(s, c, (r.centerx - radius, r.centery), (r.centerx + radius, r.centery), w)
    for dy in (-radius // 2, radius // 2):
        half = int(math.sqrt(radius**2 - dy**2))
        pygame.draw.line(
            s, c, (r.centerx - half, r.centery + dy), (r.centerx + half, r.centery + dy), w // 2 + 1
        )


def hourglass(s: pygame.Surface, r: pygame.Rect, c: Color) -> None:
    w = _w(r, 0.05)
    x0, x1 = r.x + r.w // 4, r.right - r.w // 4
    y0, y1 = r.y + r.h // 8, r.bottom - r.h // 8
    pygame.draw.line(s, c, (x0 - r.w // 16, y0), (x1 + r.w // 16, y0), w)
    pygame.draw.line(s, c, (x0 - r.w // 16, y1), (x1 + r.w // 16, y1), w)
    pygame.draw.lines(s, c, False, [(x0, y0), (r.centerx - w, r.centery), (x0, y1)], w)
    pygame.draw.lines(s, c, False, [(x1, y0), (r.centerx + w, r.centery), (x1, y1)], w)
    pygame.draw.polygon(
        s, c, [(x0 + r.w // 12, y1 - w), (x1 - r.w // 12, y1 - w), (r.centerx, y1 - r.h // 5)]
    )


def people(s: pygame.Surface, r: pygame.Rect, c: Color) -> None:
    for dx, scale in ((-r.w // 4, 0.8), (r.w // 4, 0.8), (0, 1.0)):
        head = max(3, int(r.w * 0.1 * scale))
        cx, cy = r.centerx + dx, r.centery - int(r.h * 0.12 * scale)
        pygame.draw.circle(s, c, (cx, cy), head)
        body = pygame.Rect(0, 0, int(r.w * 0.32 * scale), int(r.h * 0.34 * scale))
        body.midtop = (cx, cy + head + r.h // 40)
        radius = body.w // 2
        pygame.draw.rect(s, c, body, border_top_left_radius=radius, border_top_right_radius=radius)


def pencil(s: pygame.Surface, r: pygame.Rect, c: Color) -> None:
    w = _w(r, 0.05)
    a, b = (r.x + r.w // 5, r.bottom - r.h // 5), (r.right - r.w // 5, r.y + r.h // 5)
    pygame.draw.line(s, c, a, b, w * 3)
    pygame.draw.circle(s, c, a, w)


# Subject icons by the catalogue's stable subject keys (hub/demo.py); a subject an admin adds
# later gets the pencil until it has its own picture.
SUBJECT_ICONS: dict[str, tuple[Icon, Color]] = {
    "math": (math_signs, (11, 92, 173)),
    "danish": (book, (179, 38, 30)),
    "english": (speech, (29, 107, 51)),
    "german": (speech_two, (122, 64, 0)),
    "physics_chemistry": (flask, (106, 27, 154)),
    "biology": (leaf, (29, 107, 51)),
    "geography": (globe, (0, 105, 120)),
    "history": (hourglass, (122, 64, 0)),
    "social_studies": (people, (173, 20, 87)),
}


def subject_icon(key: str) -> tuple[Icon, Color]:
    return SUBJECT_ICONS.get(key, (pencil, (84, 90, 99)))


FACE_COLORS: list[Color] = [
    (179, 38, 30),
    (196, 90, 20),
    (150, 120, 0),
    (70, 130, 40),
    (29, 107, 51),
]


def face(rating: int) -> Icon:
    """A face from 1 (sad) to 5 (very happy)."""

    def draw(s: pygame.Surface, r: pygame.Rect, _c: Color) -> None:
        color = FACE_COLORS[rating - 1]
        radius = min(r.w, r.h) // 2
        pygame.draw.circle(s, (255, 224, 130), r.center, radius)
        pygame.draw.circle(s, color, r.center, radius, max(2, radius // 10))
        eye = max(2, radius // 9)
        for dx in (-radius // 3, radius // 3):
            pygame.draw.circle(s, (27, 29, 33), (r.centerx + dx, r.centery - radius // 4), eye)
        curve = (rating - 3) / 2  # -1 sad … 1 happy
        mouth_w, y = radius, r.centery + radius // 3
        points = []
        for i in range(13):
            u = i / 12 * 2 - 1
            points.append((r.centerx + u * mouth_w / 2, y + curve * (1 - u * u) * radius / 3.5))
        pygame.draw.lines(s, (27, 29, 33), False, points, max(2, radius // 10))

    return draw


def _star_points(cx: float, cy: float, outer: float, inner: float) -> list[tuple[float, float]]:
    points = []
    for i in range(10):
        radius = outer if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def _shape(kind: str, color: Color) -> Icon:
    def draw(s: pygame.Surface, r: pygame.Rect, _c: Color) -> None:
        side = min(r.w, r.h)
        box = pygame.Rect(0, 0, side, side)
        box.center = r.center
        cx, cy, h = box.centerx, box.centery, side // 2
        if kind == "circle":
            pygame.draw.circle(s, color, box.center, h)
        elif kind == "square":
            pygame.draw.rect(
                s, color, box.inflate(-side // 8, -side // 8), border_radius=side // 10
            )
        elif kind == "triangle":
            pygame.draw.polygon(
                s, color, [(cx, box.y), (box.right, box.bottom), (box.x, box.bottom)]
            )
        elif kind == "star":
            pygame.draw.polygon(s, color, _star_points(cx, cy, h, h * 0.45))
        elif kind == "heart":
            pygame.draw.circle(s, color, (cx - h // 2, cy - h // 4), h // 2)
            pygame.draw.circle(s, color, (cx + h // 2, cy - h // 4), h // 2)
            pygame.draw.polygon(
                s, color, [(box.x + 1, cy - h // 4), (box.right - 1, cy - h // 4), (cx, box.bottom)]
            )
        elif kind == "diamond":
            pygame.draw.polygon(
                s, color, [(cx, box.y), (box.right, cy), (cx, box.bottom), (box.x, cy)]
            )
        elif kind == "moon":
            moon = pygame.Surface(box.size, pygame.SRCALPHA)
            pygame.draw.circle(moon, color, (h, h), h)
            pygame.draw.circle(moon, (0, 0, 0, 0), (h + h // 2, h - h // 4), h * 4 // 5)
            s.blit(moon, box)
        else:  # plus
            t = side // 3
            pygame.draw.rect(s, color, (cx - t // 2, box.y, t, side), border_radius=t // 4)
            pygame.draw.rect(s, color, (box.x, cy - t // 2, side, t), border_radius=t // 4)

    return draw


SHAPES: list[tuple[str, Icon]] = [
    (kind, _shape(kind, color))
    for kind, color in [
        ("circle", (220, 60, 50)),
        ("square", (11, 92, 173)),
        ("triangle", (29, 137, 61)),
        ("star", (230, 160, 0)),
        ("heart", (200, 40, 120)),
        ("diamond", (106, 27, 154)),
        ("moon", (0, 125, 140)),
        ("plus", (150, 85, 20)),
    ]
]
