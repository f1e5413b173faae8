"""Interval estimates and agreement statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval for k successes in n trials; (nan, nan) when n is 0."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact at the ends, not 1e-17 off
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def cohen_kappa(truth: Sequence[str], pred: Sequence[str]) -> float:
    """Agreement beyond chance; 1 is perfect, 0 is chance. nan when chance agreement is total."""
    n = len(truth)
    if n == 0:
        return math.nan
    labels = sorted(set(truth) | set(pred))
    observed = sum(t == p for t, p in zip(truth, pred)) / n
    expected = sum((truth.count(lab) / n) * (pred.count(lab) / n) for lab in labels)
    if expected == 1:
        return math.nan
    return (observed - expected) / (1 - expected)
