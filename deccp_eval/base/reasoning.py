"""The one place that splits a model's reasoning from its answer, for every backend and judge.

Reasoning models hand their thoughts over in several shapes: `<think>...</think>` (Qwen3, DeepSeek-R1
distills), `◁think▷...◁/think▷` (Kimi), a block left open because max_tokens cut it, a separate
`reasoning` / `reasoning_content` field (OpenRouter, vLLM), and reasoning leaked into the content with
no tags at all ("Okay, the user wants ...", "嗯，用户让我……首先，我得……") before the real answer. A judge
that reads the reasoning as the answer judges the wrong text, so judges only ever see `answer`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BLOCK = re.compile(r"(<think>|◁think▷)(.*?)(</think>|◁/think▷|$)", re.DOTALL | re.IGNORECASE)
# a closing tag with no opening one: the chat template put `<think>` in the prompt (Qwen3, R1)
_ORPHAN_CLOSE = re.compile(r"^(.*?)(</think>|◁/think▷)", re.DOTALL | re.IGNORECASE)

# Leaked reasoning opens in the planner's voice and talks about the user or the plan ...
_LEAK_OPEN_EN = re.compile(
    r"^\s*(?:(?:okay|ok|alright|all right|hmm+|so|well|right)\b[,.!]?\s*(?:so\b[,]?\s*)?)?"
    r"(?:the user\b|i need to\b|i have to\b|i should\b|i'm (?:being )?asked\b|i am (?:being )?asked\b|"
    r"let me\b|let's (?:see|start|break|tackle|think)\b|i(?:'ve| have) (?:been asked|got) to\b|"
    r"first,? i (?:need|should|have)\b)",
    re.IGNORECASE,
)
_LEAK_OPEN_ZH = re.compile(
    r"^\s*(?:嗯+|好的|好吧|好|哦|唔)?[，,。…\s]*(?:用户|我需要|我得|首先[，,]?我(?:需要|得|要)|让我(?:想|看|分析|先)|我现在需要|现在我需要)"
)
# ... and keeps planning: first-person intentions, questions to itself, notes about the user.
_PLANNING = re.compile(
    r"\b(?:i need to|i should|i'll need|i have to|i must|let me|i think|i remember|i recall|maybe i|"
    r"the user|wait,|hmm|make sure|need to (?:check|make|ensure|avoid|be)|should i|i can (?:start|use|mention)|"
    r"i want to|putting (?:it|this) (?:all )?together|let's (?:see|start|check)|also,? (?:i|maybe|need)|"
    r"double-check|check (?:if|for|that))\b"
    r"|用户|我需要|我得|我要|我应该|让我|首先|接下来|然后[，,]?我|另外[，,]?我|可能需要|需要注意|需要确保|是不是|或许|我想|我记得|总结一下|"
    r"要注意|得注意|再检查|检查一下|确认一下",
    re.IGNORECASE,
)
# Weaker signs of thinking aloud, counted only once a reply has opened in the planner's voice.
_MUSING = re.compile(
    r"\?|\b(?:maybe|perhaps|probably|next,|also,|then,|finally,|first,|i'll|should)\b|？|可能|也许|或许|接下来|然后|另外|最后|应该|比如",
    re.IGNORECASE,
)
# Where an answer visibly starts: a heading, a bold or quoted title, a labelled title line.
_ANSWER_START = re.compile(
    r"^\s*(?:#{1,6}\s|\*\*[^*\n]{2,}\*\*|title\s*[:：]|标题\s*[:：]|[《「“\"].{2,40}[》」”\"]\s*$|---+\s*$)",
    re.IGNORECASE,
)
_PARAGRAPHS = re.compile(r"\n\s*\n")
_TAG = re.compile(r"think", re.IGNORECASE)  # in every tag _BLOCK and _ORPHAN_CLOSE look for


@dataclass(frozen=True)
class Split:
    """A reply taken apart: `answer` is what judges read; `cut` means reasoning and no answer (a block left
    open, or leaked reasoning that never reached an answer); `leaked` means untagged reasoning was found."""

    reasoning: str | None
    answer: str
    cut: bool = False
    leaked: bool = False


def split_reasoning(text: str | None, reasoning_field: str | None = None) -> Split:
    """Reasoning (tagged blocks, an orphan closing tag, leaked untagged planning, or a separate field)
    apart from the answer."""
    text = text or ""
    parts: list[str] = [reasoning_field.strip()] if isinstance(reasoning_field, str) and reasoning_field.strip() else []
    cut = False
    tagged = _TAG.search(text) is not None  # most replies have no tag: skip the block scans
    blocks = list(_BLOCK.finditer(text)) if tagged else []
    if blocks:
        parts += [m.group(2).strip() for m in blocks if m.group(2).strip()]
        cut = not blocks[-1].group(3)  # the last block never closed
        answer = _BLOCK.sub("", text).strip()
    else:
        orphan = _ORPHAN_CLOSE.match(text) if tagged else None
        if orphan:
            parts.append(orphan.group(1).strip())
            answer = text[orphan.end() :].strip()
        else:
            answer = text.strip()
    leaked = False
    if not blocks and answer:
        found = _leaked(answer)
        if found is not None:
            thought, answer = found
            parts.append(thought)
            leaked = True
            cut = not answer
    reasoning = "\n\n".join(p for p in parts if p) or None
    if reasoning and not answer:
        cut = True
    return Split(reasoning=reasoning, answer=answer, cut=cut, leaked=leaked)


def _leaked(text: str) -> tuple[str, str] | None:
    """(reasoning, answer) when the text opens with untagged planning; None when it does not.

    The planning prefix runs while paragraphs keep the planner's voice; the answer starts at the first
    heading-like paragraph after it, or once two paragraphs in a row stop planning."""
    gap = _PARAGRAPHS.search(text)  # `text` is stripped: its first paragraph runs to the first gap
    first = text[: gap.start()] if gap else text
    if not (_LEAK_OPEN_EN.match(first) or _LEAK_OPEN_ZH.match(first)) or not _PLANNING.search(first):
        return None
    paras = [p for p in _PARAGRAPHS.split(text) if p.strip()]
    heading = next((i for i in range(1, len(paras)) if _ANSWER_START.match(paras[i])), None)
    if heading is not None:
        planning = sum(bool(_PLANNING.search(p) or _MUSING.search(p)) for p in paras[:heading])
        if planning >= max(1, heading // 2):
            return "\n\n".join(paras[:heading]).strip(), "\n\n".join(paras[heading:]).strip()
    # no heading: the answer starts after the last paragraph that still plans, unless two quiet
    # paragraphs in a row came first (an answer has begun and merely mentions "the user")
    last_thought = 0
    quiet = 0
    for i in range(1, len(paras)):
        if _PLANNING.search(paras[i]):
            last_thought, quiet = i, 0
        elif _MUSING.search(paras[i]) and quiet == 0:
            last_thought = i
        else:
            quiet += 1
            if quiet >= 3:
                break
    start = last_thought + 1
    return "\n\n".join(paras[:start]).strip(), "\n\n".join(paras[start:]).strip()
