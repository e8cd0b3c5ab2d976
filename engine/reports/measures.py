"""Small statistics the reports share: working days for many date pairs, medians and percentiles."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable, Sequence

from ..workdays import is_working_day, working_days_between


def working_days_for(pairs: Sequence[tuple[date, date]]) -> list[int]:
    """`working_days_between(a, b)` for each pair, from one running count of working days over
    the dates involved (tens of thousands of pairs would otherwise each walk their own range)."""
    forward = [(a, b) for a, b in pairs if b >= a]
    if not forward:
        return [working_days_between(a, b) for a, b in pairs]
    first = min(a for a, _b in forward)
    last = max(b for _a, b in forward)
    running, count = [0], 0  # running[i]: working days in (first, first + i]
    for offset in range(1, (last - first).days + 1):
        count += is_working_day(first + timedelta(days=offset))
        running.append(count)
    return [running[(b - first).days] - running[(a - first).days] if b >= a else working_days_between(a, b)
            for a, b in pairs]


def nearest_rank(ordered: Sequence[float], share: float) -> float:
    """The smallest value with at least `share` of the values at or below it."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True)
class Spread:
    count: int
    median: float | None
    p90: float | None
    longest: float | None

    @classmethod
    def of(cls, values: Iterable[float]) -> "Spread":
        ordered = sorted(values)
        if not ordered:
            return cls(0, None, None, None)
        return cls(len(ordered), statistics.median(ordered), nearest_rank(ordered, 0.9), ordered[-1])
