"""Text helpers shared by backends and judges."""

from __future__ import annotations

import re
import unicodedata

from deccp_eval.base.reasoning import split_reasoning

_MARKDOWN = "*_`#>~|"  # markdown marks, each read as a space
_QUOTES = (("\u2018", "'"), ("\u2019", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\uff07", "'"))


def normalise(text: str) -> str:
    """Lowercase, NFKC (full-width to half-width), straight quotes, no markdown, reasoning removed."""
    answer = split_reasoning(text).answer
    answer = unicodedata.normalize("NFKC", answer)
    for curly, straight in _QUOTES:  # str.translate with a table: ~50x slower on long CJK text
        answer = answer.replace(curly, straight)
    answer = answer.lower()
    for mark in _MARKDOWN:  # one space each: the whitespace collapse below merges a run of them, as \s+ did
        answer = answer.replace(mark, " ")
    return " ".join(answer.split())  # str.split's whitespace is exactly re's \s: `\s+` -> " ", stripped


_SENTENCE_END = re.compile(r"(?<=[.!?。！？；;])\s*|\n+")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
