"""What the engine answers with."""

from __future__ import annotations

from typing import NamedTuple


class Recommendation(NamedTuple):
    """One recommended item. ``source`` is ``"personal"`` when the model scored
    it for this bag, ``"popular"`` when it fills the list by popularity,
    ``"content"`` when it came from item descriptions (cold start)."""

    item: str
    score: float
    source: str
