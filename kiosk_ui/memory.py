"""The memory game for the wait: find the pairs among 16 face-down tiles. Touch-friendly (one tap
per tile), no reading needed, and a game can stop at any moment without losing anything."""

from __future__ import annotations

import random
from functools import partial

import pygame

from kiosk_ui import theme as t
from kiosk_ui.i18n import _
from kiosk_ui.icons import SHAPES
from kiosk_ui.theme import Theme
from kiosk_ui.widgets import Button, Label, Tile, Widget

SHOW_MISS_S = 0.9  # how long two different tiles stay face up


class MemoryGame:
    def __init__(self, rng: random.Random | None = None, pairs: int = 8) -> None:
        self.rng = rng or random.Random()
        self.pairs = pairs
        self.deal()

    def deal(self) -> None:
        self.cards = [i % self.pairs for i in range(2 * self.pairs)]
        self.rng.shuffle(self.cards)
        self.up: list[int] = []  # face up, not yet matched (0–2 tiles)
        self.matched: set[int] = set()
        self.moves = 0
        self.hide_in = 0.0

    @property
    def won(self) -> bool:
        return len(self.matched) == len(self.cards)

    def flip(self, index: int) -> None:
        if index in self.matched or index in self.up:
            return
        if len(self.up) == 2:  # a third tap hides the miss at once
            self.up = []
        self.up.append(index)
        if len(self.up) == 2:
            self.moves += 1
            a, b = self.up
            if self.cards[a] == self.cards[b]:
                self.matched.update(self.up)
                self.up = []
            else:
                self.hide_in = SHOW_MISS_S

    def update(self, dt: float) -> None:
        if self.hide_in > 0:
            self.hide_in -= dt
            if self.hide_in <= 0:
                self.up = []

    def widgets(self, theme: Theme, area: pygame.Rect) -> list[Widget]:
        """The tiles in a 4 × 4 grid in `area` (real pixels), or the "you did it" card."""
        if self.won:
            moves = _("You found all the pairs in %(moves)d moves!") % {"moves": self.moves}
            box = area.inflate(-area.w // 8, -area.h // 3)
            return [
                Label(
                    "game.won",
                    box.inflate(0, -theme.px(120)).move(0, -theme.px(60)),
                    moves,
                    size=34,
                    bold=True,
                    align="center",
                ),
                Button(
                    "game.again",
                    pygame.Rect(
                        box.centerx - theme.px(170),
                        box.bottom - theme.px(96),
                        theme.px(340),
                        theme.px(88),
                    ),
                    _("Play again"),
                    on_tap=self.deal,
                ),
            ]
        gap = theme.px(12)
        side = min((area.w - 3 * gap) // 4, (area.h - 3 * gap) // 4)
        left = area.centerx - (4 * side + 3 * gap) // 2
        top = area.centery - (4 * side + 3 * gap) // 2
        tiles: list[Widget] = []
        for i, card in enumerate(self.cards):
            rect = pygame.Rect(
                left + (i % 4) * (side + gap), top + (i // 4) * (side + gap), side, side
            )
            name, art = SHAPES[card]
            if i in self.matched:
                tiles.append(Tile(f"game.tile.{i}", rect, name, art=art, fill=(214, 236, 218)))
            elif i in self.up:
                tiles.append(Tile(f"game.tile.{i}", rect, name, art=art, fill=t.SURFACE))
            else:
                tiles.append(Tile(f"game.tile.{i}", rect, "", on_tap=partial(self.flip, i)))
        return tiles
