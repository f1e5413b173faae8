"""Where in a reply a linear n-gram model's evidence sits, as quotable spans: a rationale that names
hashed character n-grams ("'ce' +0.03; '00' +0.06") tells a reader nothing, a phrase from the reply does.

Each n-gram occurrence's weight is spread evenly over its characters; the spans quoted are the windows
of the text with the largest sums, which land on the phrases the model leaned on."""

from __future__ import annotations

import bisect
import functools
import itertools
import re
import unicodedata
from collections.abc import Iterator, Sequence

import numpy as np

CJK_GROW = 6  # characters a Chinese span may grow by at each end, to reach its clause's edge
_RUN = re.compile(r"\s\s+")
_NOT_ASCII = re.compile(r"[^\x00-\x7f]")
_CJK_CLASS = "\u3400-\u9fff\uf900-\ufaff"
_WORD_BEFORE = re.compile(rf"(?:[^\W{_CJK_CLASS}]+|[{_CJK_CLASS}]{{1,{CJK_GROW}}})$")  # the rest of a word, or
_WORD_AFTER = re.compile(rf"[^\W{_CJK_CLASS}]+|[{_CJK_CLASS}]{{1,{CJK_GROW}}}")  # a few Chinese characters
_CJK = re.compile(f"[{_CJK_CLASS}]")
CJK_WIDTH = 10  # characters in a quoted span of Chinese text
LATIN_WIDTH = 28  # ... and of text in a Latin script, before it is widened to whole words


@functools.cache
def _box(n: int) -> np.ndarray:
    """n values of 1/n: spreads an n-gram's value over its characters (made once per n)."""
    return np.full(n, 1.0 / n)


def char_scores(length: int, values: np.ndarray, ngrams: Sequence[int], head: int = 0) -> np.ndarray:
    """Per character of a `length`-character text, the evidence of the n-grams over it. `values` holds one
    number per n-gram occurrence in a rolling hash's order: for each n, the n-grams of the first `head`
    characters (when head > 0), then for each n those of the whole text. Each occurrence's value is spread
    evenly over its n characters: one convolution per n with a box of n values of 1/n."""
    out = np.zeros(length)
    at = 0
    for span in ([min(head, length)] if head else []) + [length]:
        for n in ngrams:
            if n > span:
                continue
            seg = values[at : at + span - n + 1]
            if len(seg) != span - n + 1:
                raise ValueError(f"{len(values)} n-gram values, fewer than a {length}-character text has")
            out[:span] += np.convolve(seg, _box(n))
            at += span - n + 1
    if at != len(values):
        raise ValueError(f"{len(values)} n-gram values, more than a {length}-character text has")
    return out


def best_windows(scores: np.ndarray, width: int, floor: float = 0.0) -> Iterator[tuple[int, int, float]]:
    """Non-overlapping windows of `width` characters with the largest sums above `floor`, best first, as
    (start, end, sum); lazily, as a caller that has enough stops asking."""
    width = min(width, len(scores))
    if width <= 0:
        return
    cum = np.concatenate(([0.0], np.cumsum(scores)))
    sums = cum[width:] - cum[:-width]
    while True:
        i = int(np.argmax(sums))
        if sums[i] <= floor:
            return
        yield i, i + width, float(sums[i])
        sums[max(0, i - width + 1) : i + width] = -np.inf


def width_for(clean: str) -> int:
    """Chinese packs a phrase into a few characters; a Latin-script phrase needs several words."""
    cjk = len(_CJK.findall(clean[:400]))
    return CJK_WIDTH if cjk * 2 > min(len(clean), 400) else LATIN_WIDTH


class Reading:
    """One reply three ways: `original` (the part read), `low` (it normalised and lower-cased) and `clean`
    (`low` with digits folded and whitespace collapsed, `" ".join(low.split())`, what is hashed); quotes
    windows of `clean` in the reply's own words."""

    def __init__(self, original: str, low: str, clean: str) -> None:
        self.original, self.low, self.clean = original, low, clean
        lead = len(low) - len(low.lstrip())
        # clean position where each run of whitespace (it became one space) ends, and chars removed by then;
        # read as far as a quote needs (most are near the start)
        self._ends, self._removed = [0], [lead]
        self._runs: Iterator[re.Match[str]] | None = _RUN.finditer(low, lead)
        self._original_ends: list[int] | None = None

    def to_low(self, pos: int) -> int:
        ends, removed = self._ends, self._removed
        while ends[-1] <= pos and self._runs is not None:
            m = next(self._runs, None)
            if m is None:
                self._runs = None
                break
            removed.append(removed[-1] + m.end() - m.start() - 1)
            ends.append(m.end() - removed[-1])
        return pos + removed[bisect.bisect_right(ends, pos) - 1]

    def quote(self, start: int, end: int) -> str:
        """The reply's own words behind `clean[start:end]`, widened to whole words."""
        clean = self.clean
        # a Latin word is never cut; a Chinese phrase grows to its clause's edge, by a few characters at most
        before = _WORD_BEFORE.search(clean, max(0, start - 40), start)
        after = _WORD_AFTER.match(clean, end, end + 40)
        start, end = before.start() if before else start, after.end() if after else end
        lo, hi = self.to_low(start), self.to_low(max(end - 1, start)) + 1
        return " ".join(self._in_original(lo, hi).split())

    def _in_original(self, lo: int, hi: int) -> str:
        """`low[lo:hi]` as the reply wrote it (its case, digits and punctuation). NFKC and lower-casing
        nearly always keep the length, and positions line up; where they do not ("…" became "..."), each
        character's own normalised length places it, and where even that fails the normalised text is
        quoted."""
        original, low = self.original, self.low
        if len(original) == len(low):
            return original[lo:hi]
        if self._original_ends is None:
            sizes = [1] * len(original)
            for m in _NOT_ASCII.finditer(original):
                sizes[m.start()] = len(unicodedata.normalize("NFKC", m[0]).lower())
            self._original_ends = list(itertools.accumulate(sizes))
        ends = self._original_ends
        if not ends or ends[-1] != len(low):
            return low[lo:hi]
        return original[bisect.bisect_right(ends, lo) : bisect.bisect_left(ends, hi) + 1]
