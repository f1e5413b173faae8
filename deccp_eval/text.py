"""Text helpers shared by backends and judges."""

from __future__ import annotations

import re
import unicodedata

_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_MARKDOWN = re.compile(r"[*_`#>~|]+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\uff07": "'"})


def split_think(text: str) -> tuple[str | None, str]:
    """Split `<think>` blocks (reasoning models) off the answer; an unclosed block is all reasoning."""
    blocks = _THINK.findall(text)
    if not blocks:
        return None, text.strip()
    answer = _THINK.sub("", text).strip()
    reasoning = "\n".join(b.strip() for b in blocks).strip()
    return reasoning or None, answer


def normalise(text: str) -> str:
    """Lowercase, NFKC (full-width to half-width), straight quotes, no markdown, think blocks removed."""
    _, answer = split_think(text)
    answer = unicodedata.normalize("NFKC", answer).translate(_QUOTES).lower()
    answer = _MARKDOWN.sub(" ", answer)
    return re.sub(r"\s+", " ", answer).strip()


_SENTENCE_END = re.compile(r"(?<=[.!?。！？；;])\s*|\n+")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
