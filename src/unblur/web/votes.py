"""Blind A/B votes in SQLite, and what they say: win rates with confidence intervals.

A vote compares two restorations of the same picture, shown in random order as ``left`` and
``right``; the viewer picks the sharper one or says they are ``equal``. For each method,
:func:`method_stats` counts the comparisons it took part in, its wins, ties and losses, and
its **win rate with ties counted as half a win**, ``(wins + ties / 2) / comparisons``, with
the 95% **Wilson score interval** of that rate (:func:`wilson_interval`; Wilson 1927,
better than the normal approximation for the small counts a local page collects). Ties are
also reported on their own.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["CHOICES", "VoteStore", "wilson_interval"]

CHOICES = ("left", "right", "equal")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    pair TEXT NOT NULL UNIQUE,
    picture TEXT NOT NULL,
    left_method TEXT NOT NULL,
    right_method TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('left', 'right', 'equal'))
)
"""


def wilson_interval(successes: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n`` (95% by default).

    ``successes`` may be fractional (ties counted as half a win).

    Example:
        >>> lo, hi = wilson_interval(8, 10)
        >>> round(lo, 3), round(hi, 3)
        (0.49, 0.943)
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


class VoteStore:
    """Votes in one SQLite file; safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def add(self, pair: str, picture: str, left: str, right: str, choice: str) -> bool:
        """Record a vote; ``False`` if this pair was already voted on.

        Raises:
            ValueError: ``choice`` is not ``left``, ``right`` or ``equal``.
        """
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {', '.join(CHOICES)}, got {choice!r}")
        with self._lock, self._connect() as db:
            try:
                db.execute(
                    "INSERT INTO votes (created, pair, picture, left_method, right_method, choice)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (time.time(), pair, picture, left, right, choice),
                )
            except sqlite3.IntegrityError:
                return False
        return True

    def voted(self, pair: str) -> bool:
        with self._lock, self._connect() as db:
            row = db.execute("SELECT 1 FROM votes WHERE pair = ?", (pair,)).fetchone()
        return row is not None

    def rows(self) -> list[tuple[str, str, str]]:
        """Every vote as ``(left_method, right_method, choice)``."""
        with self._lock, self._connect() as db:
            return db.execute("SELECT left_method, right_method, choice FROM votes").fetchall()

    def method_stats(self) -> list[dict[str, Any]]:
        """Per method, best win rate first: ``method, comparisons, wins, ties, losses,
        win_rate`` (ties half) and ``ci_low``, ``ci_high`` (95% Wilson)."""
        stats: dict[str, dict[str, int]] = {}
        for left, right, choice in self.rows():
            for me, other_side in ((left, "right"), (right, "left")):
                s = stats.setdefault(me, {"comparisons": 0, "wins": 0, "ties": 0, "losses": 0})
                s["comparisons"] += 1
                if choice == "equal":
                    s["ties"] += 1
                elif choice == other_side:
                    s["losses"] += 1
                else:
                    s["wins"] += 1
        out = []
        for method, s in stats.items():
            score = s["wins"] + s["ties"] / 2
            low, high = wilson_interval(score, s["comparisons"])
            out.append(
                {
                    "method": method,
                    **s,
                    "win_rate": score / s["comparisons"],
                    "ci_low": low,
                    "ci_high": high,
                }
            )
        return sorted(out, key=lambda r: (-r["win_rate"], r["method"]))

    def pairwise(self) -> list[dict[str, Any]]:
        """Per pair of methods (alphabetical): how often each was judged sharper."""
        table: dict[tuple[str, str], dict[str, int]] = {}
        for left, right, choice in self.rows():
            a, b = sorted((left, right))
            t = table.setdefault((a, b), {"a_wins": 0, "b_wins": 0, "ties": 0})
            if choice == "equal":
                t["ties"] += 1
            else:
                winner = left if choice == "left" else right
                t["a_wins" if winner == a else "b_wins"] += 1
        return [{"a": a, "b": b, **t} for (a, b), t in sorted(table.items())]
