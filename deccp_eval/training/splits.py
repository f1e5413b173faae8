"""Prompt splits by pair_id: direction / selection / test.

A question and its translations share a pair_id and always land in the same split, so no split
sees a question another split was built or tuned on. The split depends only on the pair_id (a
sha256 hash), so it is the same in every run, on every machine, for every tool that asks
(abliteration, preference export).

- direction: builds the refusal direction (or trains a fine-tune);
- selection: scores candidates; its best-of-N number is optimistic and labelled as such;
- test: touched once, after the choice; the only numbers a record, card or README reports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Literal, TypeVar

from deccp_eval.base.schema import Prompt

Split = Literal["direction", "selection", "test"]
SPLITS: tuple[Split, ...] = ("direction", "selection", "test")
DEFAULT_EVERY = 5  # every 5th pair is held out: half of those select, half test
P = TypeVar("P", bound=Prompt)


def split_of(pair_id: str, every: int = DEFAULT_EVERY) -> Split:
    """`every` = 1 holds out every pair (a set made only for evaluation): selection or test, half each."""
    if every < 1:
        raise ValueError("every must be >= 1")
    h = int(hashlib.sha256(pair_id.encode("utf-8")).hexdigest()[:12], 16)
    if h % every:
        return "direction"
    return "selection" if (h // every) % 2 == 0 else "test"


def by_split(prompts: Iterable[P], every: int = DEFAULT_EVERY) -> dict[Split, list[P]]:
    out: dict[Split, list[P]] = {s: [] for s in SPLITS}
    for p in prompts:
        out[split_of(p.pair_id, every)].append(p)
    return out


def spread(prompts: list[P], limit: int | None) -> list[P]:
    """At most `limit` prompts as whole pairs taken evenly across the list (so every topic stays in)."""
    if limit is None or len(prompts) <= limit:
        return prompts
    pairs: dict[str, list[P]] = {}
    for p in prompts:
        pairs.setdefault(p.pair_id, []).append(p)
    groups = list(pairs.values())
    per_pair = max(1, len(prompts) // len(groups))
    keep = max(1, limit // per_pair)
    step = len(groups) / keep
    chosen = [groups[int(i * step)] for i in range(keep)]
    return [p for g in chosen for p in g]
