"""The trained verdict classifier: features, a linear model, calibration, and its file format.

Why this shape: the judge must hold on answers from questions it never saw, in English and Chinese,
run offline at about a thousand long answers a second on one core, and load in a blink. So:
- features are hashed character n-grams (2-4, no tokenizer, both scripts alike) of the answer's
  opening and of its whole text, plus a few dense signals (lexicon hits for refusals, the official
  line, attribution and deflection; length; script of answer vs question). The question is not a
  feature: a judge that learns which question was asked learns nothing that transfers;
- n-grams seen in answers to fewer than `min_questions` distinct questions get no weight, so the
  model keeps what recurs across topics (how refusals and the state line are phrased), not topics;
- a multinomial logistic regression (scikit-learn, at training time only) whose weights are saved as
  plain arrays (`.npz`, no pickle: loading runs no code), scored with numpy;
- beside it, a binary "answer view" for the decision that matters most (answer or not): character
  1-4-grams of the same text, counted (sublinear tf-idf, L2), trained where there is one on a second
  labeller's agreed answer-vs-not verdict (SpeechMap's), else on ours; it keeps only n-grams seen in
  answers to `answer_min_questions` (7) questions, a stricter bar, as counts at a weak penalty learn
  topics faster than presence does. Its P(answer) is blended with the four-class model's; the
  non-answer classes keep the four-class model's proportions. It reads
  how much of a reply is made of what (an official-line essay repeats its phrases; a critique that
  quotes the line once does not), which presence-only n-grams cannot;
- the confidence is the top probability mapped through an isotonic curve fitted on out-of-fold
  predictions (grouped by question), so 0.9 means "right about 9 times in 10" on unseen questions.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from deccp_eval.backends.fingerprint import file_sha256
from deccp_eval.base.errors import MissingDependency, UsageError
from deccp_eval.base.reasoning import split_reasoning
from deccp_eval.judging import spans
from deccp_eval.judging.label_scores import calibration_summary, metrics

FORMAT = "deccp-eval-clf/2"
BITS = 18  # 262,144 hashed columns per model
HEAD_CHARS = 400  # refusals and state-line openers live at the start of a reply
TAIL_CHARS = 300  # ... and sign-offs, offers of other help and slogans at its end
BODY_CHARS = 3000  # enough to see what a long essay does; bounds the cost per answer
NGRAMS = (2, 3, 4)
ANSWER_NGRAMS = (1, 2, 3, 4)  # the answer view's n-grams, of the whole text (they share its buckets)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MULT = np.uint64(1000003)
_DIGITS = re.compile(r"\d")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


def _clean(low: str) -> str:
    """Digits folded (a year is a year) and whitespace collapsed, on NFKC lower-cased text (`_lower`)."""
    return " ".join(_DIGITS.sub("0", low).split())


def _hashes(text: str, head: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Bucket ids of character n-grams: (every n-gram (n in NGRAMS) of `text[:head]` (salt 1), then of all of
    `text` (salt 2), for the four-class model; every n-gram (n in ANSWER_NGRAMS) of all of `text` (salt 2),
    for the answer view). The opening's n-grams are the text's first ones and the views share the whole
    text's, so each rolling hash is computed once."""
    empty = np.zeros(0, dtype=np.int32)
    if not text:
        return empty, empty
    c = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    firsts, wholes, answer = [], [], []
    h = np.zeros(len(c), dtype=np.uint64)
    shift = np.uint64(64 - bits)
    for n in range(1, max(NGRAMS + ANSWER_NGRAMS) + 1):
        if n > len(c):
            break
        # h[i] holds the hash of c[i : i + n]
        h = h[: len(c) - n + 1] * _MULT + c[n - 1 :] if n > 1 else c.copy()
        whole = (((h ^ np.uint64(2 * 0x1000193 + n)) * _MIX) >> shift).astype(np.int32)
        if n in NGRAMS:
            if head >= n:
                firsts.append((((h[: head - n + 1] ^ np.uint64(1 * 0x1000193 + n)) * _MIX) >> shift).astype(np.int32))
            wholes.append(whole)
        if n in ANSWER_NGRAMS:
            answer.append(whole)
    out = firsts + wholes
    return (np.concatenate(out) if out else empty), (np.concatenate(answer) if answer else empty)


# -- dense signals -----------------------------------------------------------------------------------
@dataclass
class Lexicon:
    """Named phrase groups that the dense features count (saved inside the model file, so a model scores
    the same later whatever the tables become). Chinese entries count as substrings; Latin entries are
    regex fragments matched on word boundaries, one alternation per group; `re:` entries are whole regexes."""

    groups: dict[str, list[str]] = field(default_factory=dict)
    _compiled: dict[str, tuple[dict[str, list[str]], re.Pattern[str] | None, list[re.Pattern[str]]]] = field(
        default_factory=dict, repr=False
    )

    def compiled(self) -> dict[str, tuple[dict[str, list[str]], re.Pattern[str] | None, list[re.Pattern[str]]]]:
        """Per group: its Chinese literals indexed by first character, its Latin entries as one pattern, and
        its `re:` patterns."""
        if not self._compiled:
            for name, entries in self.groups.items():
                literals: dict[str, list[str]] = {}
                for e in entries:
                    if _CJK.search(e) and not e.startswith("re:"):
                        literals.setdefault(e[0], []).append(e)
                latin = [e for e in entries if not _CJK.search(e) and not e.startswith("re:")]
                whole = [re.compile(e[3:]) for e in entries if e.startswith("re:")]
                pattern = (
                    re.compile(r"(?<![a-z0-9])(?:" + "|".join(f"(?:{e})" for e in latin) + r")(?![a-z0-9])")
                    if latin
                    else None
                )
                self._compiled[name] = (literals, pattern, whole)
        return self._compiled

    def counts(self, text: str, cjk: bool = True, latin: bool = True) -> list[int]:
        """Hits of every group in `text`, in group order. Literals and Latin entries of a script the whole
        reply lacks are not searched for; `re:` entries (either script) always are. Chinese literals are
        counted only where their first character occurs; Latin entries read the text with its CJK runs
        blanked (no CJK character is a word character for them), so a Chinese reply costs them little."""
        chars = set(text) if cjk else set()
        blanked = _CJK_RUN.sub(" ", text) if cjk else text
        out = []
        for literals, pattern, whole in self.compiled().values():
            n = sum(text.count(lit) for ch in chars.intersection(literals) for lit in literals[ch]) if chars else 0
            if latin and pattern:
                n += len(pattern.findall(blanked))
            n += sum(len(p.findall(text)) for p in whole)  # whole regexes, of either script (官方称 has no Latin)
            out.append(n)
        return out


# Full-width ASCII and the ideographic space, mapped as NFKC maps them: most Chinese replies need nothing
# more, and checking that is far cheaper than normalising.
_FULLWIDTH = re.compile("[\uff01-\uff5e\u3000]")


def _narrow(m: re.Match[str]) -> str:
    c = ord(m.group())
    return " " if c == 0x3000 else chr(c - 0xFEE0)


def _lower(answer: str) -> str:
    """NFKC and lower case of the part of a reply the features read."""
    part = answer[:BODY_CHARS]
    if not part.isascii() and not unicodedata.is_normalized("NFKC", part):
        narrow = _FULLWIDTH.sub(_narrow, part)
        part = narrow if unicodedata.is_normalized("NFKC", narrow) else unicodedata.normalize("NFKC", part)
    return part.lower()


def _script_shares(low: str) -> tuple[float, float]:
    """Shares of `low`'s characters that are CJK (as `_CJK` reads them) and ASCII letters: one
    vectorised pass over the code points, several times cheaper than collecting the regex runs."""
    if not low:
        return 0.0, 0.0
    c = np.frombuffer(low.encode("utf-32-le"), dtype=np.uint32)
    cjk = ((c >= 0x3400) & (c <= 0x9FFF)) | ((c >= 0xF900) & (c <= 0xFAFF))
    folded = c | 32  # A-Z onto a-z; no other code point lands there
    latin = (folded >= 0x61) & (folded <= 0x7A)
    return int(np.count_nonzero(cjk)) / len(c), int(np.count_nonzero(latin)) / len(c)


def dense(answer: str, question: str, lexicon: Lexicon, low: str | None = None) -> list[float]:
    """A handful of signals that say how a reply is built, independent of its topic: its length, script
    and layout, and phrase-group hits in its opening and its close (where refusals, official-line
    openers and sign-offs sit; the n-grams see the body)."""
    low = _lower(answer) if low is None else low
    head, tail = low[:HEAD_CHARS], low[-TAIL_CHARS:] if len(low) > HEAD_CHARS else ""
    cjk_a, latin_a = _script_shares(low)
    q_cjk = bool(_CJK.search(question))
    # Length and layout help tell essays from refusals; so that "short" does not come to mean "refused"
    # (real answers to factual questions are often two sentences), training adds the openings of long
    # answers as short examples of their class (`augmented`).
    n = max(len(answer), 1)
    feats = [
        np.log1p(len(answer)) / 10.0,
        float(len(answer) < 200),
        float(len(answer) < 600),
        min(answer.count("\n") / (n / 200), 3.0) / 3.0,  # structure: lines per 200 chars
        float(bool(re.search(r"^\s*(?:#|\*\*|\d+\.|[-*•] )", answer, re.M))),  # a list or heading
        cjk_a,
        float(q_cjk and cjk_a < 0.05 and latin_a > 0.3),  # Chinese question, answer not in Chinese
        float(not q_cjk and cjk_a > 0.3),  # English question, answer in Chinese
    ]
    in_head = lexicon.counts(head, cjk_a > 0, latin_a > 0)
    in_tail = lexicon.counts(tail, cjk_a > 0, latin_a > 0) if tail else [0] * len(in_head)
    for h, t in zip(in_head, in_tail):
        feats += [min(h, 3) / 3.0, min(t, 3) / 3.0]
    return [float(f) for f in feats]


def answer_text(response: str) -> str:
    """What the classifier reads: the answer, never the reasoning."""
    return split_reasoning(response).answer


@dataclass
class Row:
    """One reply as the model reads it."""

    buckets: np.ndarray  # distinct buckets of the four-class model's n-grams
    hashed: np.ndarray | None  # every one of them in text order, when asked (for rationales)
    dense: list[float]
    clean: str  # the text hashed
    low: str  # the text read, normalised and lower-cased (`_lower`), before `_clean`
    answer_buckets: np.ndarray  # distinct buckets of the answer view's n-grams
    answer_tf: np.ndarray  # and their sublinear counts, 1 + log(count)
    answer_hashed: np.ndarray | None = None  # the answer view's n-grams in text order, when asked


def _row(answer: str, question: str, lexicon: Lexicon, bits: int, positions: bool = False) -> Row:
    low = _lower(answer)
    clean = _clean(low)
    hashed, answer_hashed = _hashes(clean, HEAD_CHARS, bits)
    buckets, counts = _counted(answer_hashed)
    return Row(
        buckets=_distinct(hashed),
        hashed=hashed if positions else None,
        dense=dense(answer, question, lexicon, low),
        clean=clean,
        low=low,
        answer_buckets=buckets,
        answer_tf=1.0 + np.log(counts),
        answer_hashed=answer_hashed if positions else None,
    )


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's hashing path is several times slower on these small arrays)."""
    if not len(values):
        return values
    s = np.sort(values)
    return s[np.concatenate(([True], s[1:] != s[:-1]))]


def _counted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and how often each occurs."""
    if not len(values):
        return values, np.zeros(0, dtype=np.int64)
    s = np.sort(values)
    edges = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1], [True])))
    return s[edges[:-1]], np.diff(edges)


def _blend(p: np.ndarray, p_view: np.ndarray, k: int, share: float) -> np.ndarray:
    """Four-class probabilities (rows of `p`) with P(class k = answer) replaced by `share` of the answer
    view's and the rest of the four-class model's; the other classes keep their proportions."""
    p_answer = share * p_view + (1 - share) * p[..., k]
    rest = (1 - p_answer) / np.maximum(1 - p[..., k], 1e-12)
    out = p * rest[..., None]
    out[..., k] = p_answer
    return out


class _AnswerTable(NamedTuple):
    idf: np.ndarray
    push: np.ndarray  # idf * weight
    rows: np.ndarray  # (idf, push) per bucket


class _Quoter:
    """Quotes the reply's own phrases where a view's evidence sits (`spans`)."""

    def __init__(self, answer: str, row: Row) -> None:
        self.width = spans.width_for(row.clean)
        self.reading = spans.Reading(answer[:BODY_CHARS], row.low, row.clean)

    def spans(self, values: np.ndarray, head: int, ngrams: Sequence[int], top: int) -> list[str]:
        """Up to `top` quoted phrases where the n-grams' `values` (one per occurrence, in hashing order) sum
        highest, strongest first, each with its sum."""
        scores = spans.char_scores(len(self.reading.clean), values, ngrams, head)
        out: dict[str, float] = {}
        for a, b, s in spans.best_windows(scores, self.width, floor=0.01):  # a refrain is quoted once
            if len(out) == top:
                break
            phrase = self.reading.quote(a, b)
            out.setdefault(phrase, s)
        return [f"{phrase!r} {s:+.2f}" for phrase, s in out.items()]


# -- the model ----------------------------------------------------------------------------------------
@dataclass
class VerdictModel:
    """Weights and calibration of a trained judge; scoring is numpy only."""

    classes: list[str]
    weights: np.ndarray  # (2**bits, n_classes) float32, zero rows for masked buckets
    dense_weights: np.ndarray  # (n_dense, n_classes)
    dense_mean: np.ndarray
    dense_scale: np.ndarray
    bias: np.ndarray  # (n_classes,)
    lexicon: Lexicon
    bits: int = BITS
    calibration_x: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0]))
    calibration_y: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0]))
    # the answer view (`_blend`): weights and idf per bucket (idf 0 for buckets it ignores), bias, and the
    # share of P(answer) it decides; a share of 0 (no view) leaves the four-class model alone
    answer_weights: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    answer_idf: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    answer_bias: float = 0.0
    answer_share: float = 0.0
    card: dict[str, Any] = field(default_factory=dict)
    _answer_table: _AnswerTable | None = field(default=None, repr=False)

    def logits(
        self, answer: str, question: str, positions: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Row]:
        """(the four-class model's logits, its per-bucket contributions, scaled dense features, the row)."""
        row = _row(answer, question, self.lexicon, self.bits, positions)
        x = 1.0 / np.sqrt(max(len(row.buckets), 1))
        # gathered as (k, C) rows of the (buckets, C) weights (a quarter of the time of gathering columns of a
        # (C, buckets) copy), then laid out (C, k): each class's sum runs over contiguous memory
        contrib = np.ascontiguousarray(np.take(self.weights, row.buckets, axis=0).T) * x
        z = (np.asarray(row.dense) - self.dense_mean) / self.dense_scale
        logit = contrib.sum(axis=1) + z @ self.dense_weights + self.bias
        return logit, contrib, z, row

    def answer_table(self) -> _AnswerTable:
        """The answer view's idf and idf * weight per bucket, each alone (rationales gather one) and as the
        rows of one table (scoring gathers a reply's buckets in one pass)."""
        if self._answer_table is None:
            idf = self.answer_idf.astype(np.float32)
            push = (self.answer_idf * self.answer_weights).astype(np.float32)
            self._answer_table = _AnswerTable(idf, push, np.stack([idf, push], axis=1))
        return self._answer_table

    def answer_view(self, row: Row) -> float:
        """The answer view's P(answer) for a reply: its tf-idf vector, L2-normalised, through the weights."""
        idf = np.take(self.answer_table().rows, row.answer_buckets, axis=0)  # np.take: far faster than indexing
        v = row.answer_tf * idf[:, 0]
        norm = float(np.sqrt(v @ v))
        score = float(row.answer_tf @ idf[:, 1]) / norm if norm else 0.0
        return 1.0 / (1.0 + float(np.exp(-(score + self.answer_bias))))

    def probabilities(self, logit: np.ndarray, row: Row) -> tuple[np.ndarray, float | None]:
        """(the four-class model's probabilities with the answer view's share of P(answer) blended in,
        the answer view's P(answer); None without one)."""
        p = _softmax(logit)
        if not self.answer_share:
            return p, None
        view = self.answer_view(row)
        return _blend(p, np.asarray(view), self.classes.index("answer"), self.answer_share), view

    def predict(self, answer: str, question: str = "") -> tuple[str, np.ndarray, float]:
        """(class, probabilities, calibrated confidence)."""
        logit, _, _, row = self.logits(answer, question)
        p, _ = self.probabilities(logit, row)
        k = int(np.argmax(p))
        return self.classes[k], p, self.calibrate(float(p[k]))

    def calibrate(self, top: float) -> float:
        return float(np.interp(top, self.calibration_x, self.calibration_y))

    def explain(self, answer: str, question: str = "", top: int = 2) -> tuple[str, np.ndarray, float, str]:
        """(class, probabilities, confidence, rationale): the reply's phrases that decided (`spans`) and the
        signals that pushed the verdict hardest against the runner-up class. An answer verdict quotes the
        answer view, which holds most of P(answer); any other quotes the four-class model against the
        runner-up. One view's phrases, not both: quoting costs about as much as a third of the verdict."""
        logit, contrib, z, row = self.logits(answer, question, positions=True)
        p, view = self.probabilities(logit, row)
        order = np.argsort(-p)
        k, r = int(order[0]), int(order[1])
        quoted = _Quoter(answer, row)
        phrases: list[str] = []
        seen = "" if view is None else f" (answer view {view:.2f})"
        if view is not None and self.classes[k] == "answer":
            found = self._view_spans(quoted, row, top)
            seen = f" (answer view {view:.2f}: {'; '.join(found)})" if found else seen
        elif row.hashed is not None and len(row.hashed):
            # every occurrence of an n-gram counts as the evidence its bucket is (the model counts presence)
            w = np.take(self.weights, row.hashed, axis=0)
            phrases = quoted.spans((w[:, k] - w[:, r]) / np.sqrt(len(row.buckets)), HEAD_CHARS, NGRAMS, top)
        dmargin = z * (self.dense_weights[:, k] - self.dense_weights[:, r])
        names = signal_names(self.lexicon)
        # a signal can push by its absence (no refusal phrase, not short): say which, or a reader is misled;
        # a count or flag is there when it is above 0, a measure (length, lines, script) when above the mean
        there = [z[i] > 0 if i in _MEASURES else row.dense[i] > 0 for i in range(len(z))]
        signals = [
            f"{names[i][0 if there[i] else 1]} {dmargin[i]:+.2f}" for i in np.argsort(-dmargin)[:2] if dmargin[i] > 0.05
        ]
        probs = ", ".join(f"{self.classes[i]}={p[i]:.2f}" for i in order)
        rationale = f"probabilities {probs}{seen}; over {self.classes[r]}: " + "; ".join(phrases + signals)
        return self.classes[k], p, self.calibrate(float(p[k])), rationale

    def _view_spans(self, quoted: _Quoter, row: Row, top: int) -> list[str]:
        """The phrases that pushed the answer view's P(answer) up most."""
        if row.answer_hashed is None or not len(row.answer_buckets):
            return []
        v = row.answer_tf * np.take(self.answer_table().idf, row.answer_buckets)
        norm = float(np.sqrt(v @ v)) or 1.0
        return quoted.spans(np.take(self.answer_table().push, row.answer_hashed) / norm, 0, ANSWER_NGRAMS, top)

    # -- file format ---------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """`path` (.npz: arrays only, no pickle) and `path.json` (the card)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        nz = np.flatnonzero(np.abs(self.weights).sum(axis=1))
        meta = {
            "format": FORMAT,
            "classes": self.classes,
            "bits": self.bits,
            "lexicon": self.lexicon.groups,
            "answer_bias": self.answer_bias,
            "answer_share": self.answer_share,
        }
        answer_rows = np.flatnonzero(self.answer_idf)
        with path.open("wb") as f:
            np.savez_compressed(
                f,
                rows=nz.astype(np.int32),
                values=self.weights[nz].astype(np.float16),
                dense_weights=self.dense_weights,
                dense_mean=self.dense_mean,
                dense_scale=self.dense_scale,
                bias=self.bias,
                calibration_x=self.calibration_x,
                calibration_y=self.calibration_y,
                answer_rows=answer_rows.astype(np.int32),
                answer_idf=self.answer_idf[answer_rows].astype(np.float32),
                answer_values=self.answer_weights[answer_rows].astype(np.float16),
                meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode(), dtype=np.uint8),
            )
        card = {**self.card, "format": FORMAT, "weights_sha256": file_sha256(path)}
        path.with_name(path.name + ".json").write_text(
            json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )


def load(path: Path) -> VerdictModel:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if meta.get("format") != FORMAT:
                raise UsageError(
                    f"{path}: not a deccp-eval classifier ({meta.get('format')!r}); "
                    "retrain it with `deccp-eval train-judge`"
                )
            bits = int(meta["bits"])
            weights = np.zeros((2**bits, len(meta["classes"])), dtype=np.float32)
            weights[z["rows"]] = z["values"].astype(np.float32)
            arrays = {
                k: z[k]
                for k in ("dense_weights", "dense_mean", "dense_scale", "bias", "calibration_x", "calibration_y")
            }
            answer_weights = np.zeros(2**bits, dtype=np.float32)
            answer_idf = np.zeros(2**bits, dtype=np.float32)
            answer_weights[z["answer_rows"]] = z["answer_values"].astype(np.float32)
            answer_idf[z["answer_rows"]] = z["answer_idf"]
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(
            f"{path}: cannot read the classifier ({exc}); retrain it with `deccp-eval train-judge`"
        ) from None
    card_path = path.with_name(path.name + ".json")
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    lexicon = Lexicon(dict(meta["lexicon"]))
    lexicon.compiled()  # its regexes (about 40 ms) belong to loading, not to the first verdicts
    return VerdictModel(
        classes=list(meta["classes"]),
        weights=weights,
        lexicon=lexicon,
        bits=bits,
        answer_weights=answer_weights,
        answer_idf=answer_idf,
        answer_bias=float(meta["answer_bias"]),
        answer_share=float(meta["answer_share"]),
        card=card,
        **arrays,
    )


_MEASURES = frozenset({0, 3, 5})  # the dense features that are measures, not counts or flags (`dense`)


def signal_names(lexicon: Lexicon) -> list[tuple[str, str]]:
    """Each dense feature's name in a rationale: (when the reply has it, when it does not)."""
    names = [
        ("longer than usual", "shorter than usual"),
        ("short (<200)", "not short (200+)"),
        ("short (<600)", "600+ characters"),
        ("many lines", "few lines"),
        ("a list or heading", "no list or heading"),
        ("much Chinese script", "little Chinese script"),
        ("zh question, non-zh answer", "not a zh question with a non-zh answer"),
        ("en question, zh answer", "not an en question with a zh answer"),
    ]
    for g in lexicon.compiled():
        names += [(f"{g} at the start", f"no {g} at the start"), (f"{g} at the end", f"no {g} at the end")]
    return names


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# -- training (scikit-learn, lazy) --------------------------------------------------------------------
@dataclass
class Example:
    question: str
    response: str
    label: str
    group: str  # the question it answers (grouped CV keeps a question out of its own training)
    lang: str = "en"
    source: str = ""  # the file it came from: figures are also reported per source
    # answer-or-not by a second labeller who agreed with itself (SpeechMap's two judges), where there is one:
    # the answer view learns it; None: it learns whether `label` is an answer
    answer: bool | None = None
    id: str = ""  # the row's name in its source file, where it has one: for reading what was missed

    def is_answer(self) -> bool:
        """What the answer view learns for this row."""
        return self.label == "answer" if self.answer is None else self.answer


_BREAK = re.compile(r"\n\s*\n|(?<=[.!?。！？])\s*")


def opening(response: str, lo: int = 120, hi: int = 400) -> str | None:
    """The reply cut at a paragraph or sentence end between `lo` and `hi` characters: a short reply of the
    same kind (the first paragraph of a critique is a critique, of a refusal a refusal). None when the
    reply is already short or has no such break."""
    answer = answer_text(response)
    if len(answer) < hi * 1.5:
        return None
    cuts = [m.end() for m in _BREAK.finditer(answer, lo, hi)]
    return answer[: cuts[-1]].strip() if cuts else None


def augmented(
    examples: Sequence[Example], labels: Sequence[str] = ("answer", "refusal", "state_aligned")
) -> list[Example]:
    """Openings of long answers as extra training rows (same labels, same question group), so the judge
    learns that length is not the verdict: real answers to factual questions are often two sentences."""
    extra = []
    for e in examples:
        if e.label in labels:
            head = opening(e.response)
            if head:
                extra.append(replace(e, response=head))  # every other field kept, whatever fields come later
    return extra


@dataclass
class Prepared:
    """The training rows as matrices: the four-class model's n-grams (scaled) and dense features, and the
    answer view's n-grams (sublinear counts, before idf)."""

    x: Any
    d: np.ndarray
    a: Any

    def take(self, idx: Sequence[int] | np.ndarray) -> Prepared:
        return Prepared(self.x[idx], self.d[idx], self.a[idx])


def matrix(examples: Sequence[Example], lexicon: Lexicon, bits: int = BITS) -> Prepared:
    """The training matrices of `examples`."""
    from scipy.sparse import csr_matrix

    def sparse(indices: list[np.ndarray], data: list[np.ndarray]) -> Any:
        indptr = np.concatenate(([0], np.cumsum([len(i) for i in indices])))
        return csr_matrix(
            (
                np.concatenate(data) if data else np.zeros(0),
                np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
                indptr,
            ),
            shape=(len(examples), 2**bits),
        )

    xi, xv, ai, av, dense_rows = [], [], [], [], []
    for ex in examples:
        row = _row(answer_text(ex.response), ex.question, lexicon, bits)
        xi.append(row.buckets)
        xv.append(np.full(len(row.buckets), 1.0 / np.sqrt(max(len(row.buckets), 1)), dtype=np.float32))
        ai.append(row.answer_buckets)
        av.append(row.answer_tf)
        dense_rows.append(row.dense)
    return Prepared(sparse(xi, xv), np.asarray(dense_rows, dtype=np.float64), sparse(ai, av))


@dataclass
class Settings:
    c: float = 4.0
    min_questions: int = 3
    class_weight: str | None = None
    dense_boost: float = 1.0
    seed: int = 0
    answer_c: float = 256.0  # the answer view's inverse regularisation (its rows are L2-normalised)
    answer_share: float = 0.7  # its share of P(answer); 0 trains no answer view
    # the answer view keeps only n-grams seen in answers to this many questions: its counted n-grams and weak
    # regularisation learn topics fast, so it needs a stricter bar than the four-class model (`_view_bar`)
    answer_min_questions: int = 7


def _recurring(x: Any, groups: Sequence[str], min_questions: int) -> np.ndarray:
    """1.0 for the columns seen in answers to at least `min_questions` different questions, else 0.0: topic
    words of one question teach nothing that transfers."""
    g = np.asarray(groups)
    seen = np.zeros(x.shape[1], dtype=np.int32)
    for one in np.unique(g):
        seen[np.unique(x[g == one].indices)] += 1
    return (seen >= min_questions).astype(np.float32)


def _view_bar(s: Settings, groups: Sequence[str]) -> int:
    """How many questions an n-gram must recur in for the answer view: `answer_min_questions`, but never
    below `min_questions` nor above half the questions there are (a small training set keeps a view)."""
    return min(s.answer_min_questions, max(s.min_questions, len(set(groups)) // 2))


def _tfidf(a: Any, idf: np.ndarray) -> Any:
    """Answer-view rows weighted by idf and L2-normalised (as `VerdictModel.answer_view` scores them)."""
    from scipy.sparse import csr_matrix, diags

    w = csr_matrix(a @ diags(idf))
    norm = np.sqrt(np.asarray(w.multiply(w).sum(axis=1)).ravel())
    return csr_matrix(diags(1.0 / np.where(norm > 0, norm, 1.0)) @ w)


def fit_matrix(
    p: Prepared,
    labels: Sequence[str],
    answers: Sequence[bool],
    groups: Sequence[str],
    lexicon: Lexicon,
    settings: Settings | None = None,
    bits: int = BITS,
) -> VerdictModel:
    """One model (the four-class model, and the answer view on `answers`) on prepared matrices, no
    calibration: `train` adds the curve."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise MissingDependency("scikit-learn", "judges", "Training a judge") from None
    from scipy.sparse import csr_matrix, hstack

    s = settings or Settings()
    labels = list(labels)
    classes = sorted(set(labels))
    if len(classes) < 2 or min(labels.count(c) for c in classes) < 3:
        raise UsageError(
            f"training needs at least two verdict classes with 3+ examples each; got "
            f"{ {c: labels.count(c) for c in classes} }"
        )
    # only the columns that can get weight go to the solver: its work per step scales with the columns it
    # is given (2**bits of them, mostly empty, made L-BFGS three quarters of a training), not with the data
    cols = np.flatnonzero(_recurring(p.x, groups, s.min_questions))
    x = csr_matrix(p.x[:, cols])
    mean, scale = p.d.mean(axis=0), p.d.std(axis=0) + 1e-6
    z = (p.d - mean) / scale * s.dense_boost
    clf = LogisticRegression(C=s.c, max_iter=500, tol=1e-3, class_weight=s.class_weight, random_state=s.seed)
    clf.fit(hstack([x, csr_matrix(z)]).tocsr(), labels)
    coef = clf.coef_.T  # (features, classes), or (features, 1) for two classes
    if len(classes) == 2:
        coef = np.hstack([-coef / 2, coef / 2])
        bias = np.array([-clf.intercept_[0] / 2, clf.intercept_[0] / 2])
    else:
        bias = clf.intercept_
    n = len(cols)
    weights = np.zeros((p.x.shape[1], len(classes)), dtype=np.float32)
    weights[cols] = coef[:n]
    model = VerdictModel(
        classes=[str(c) for c in clf.classes_],
        weights=weights,
        dense_weights=coef[n:] * s.dense_boost,
        dense_mean=mean,
        dense_scale=scale,
        bias=np.asarray(bias, dtype=np.float64),
        lexicon=lexicon,
        bits=bits,
    )
    y = np.asarray(answers, dtype=int)
    if s.answer_share and "answer" in model.classes and min(y.sum(), len(y) - y.sum()) >= 3:
        # smooth idf over the columns that recur across questions (the others get no weight and no norm)
        df = np.bincount(p.a.indices, minlength=p.a.shape[1])
        recurring = _recurring(p.a, groups, _view_bar(s, groups))
        idf = ((np.log((1 + p.a.shape[0]) / (1 + df)) + 1) * recurring).astype(np.float32)
        used = np.flatnonzero(idf)
        if len(used):  # else no view: nothing recurs enough to learn from
            # solved to convergence: a loose tolerance stops L-BFGS early, where a small change in the data moves it
            view = LogisticRegression(C=s.answer_c, max_iter=2000, tol=1e-6, random_state=s.seed)
            view.fit(csr_matrix(_tfidf(p.a, idf)[:, used]), y)
            model.answer_weights = np.zeros(p.a.shape[1], dtype=np.float32)
            model.answer_weights[used] = view.coef_[0]
            model.answer_idf = idf
            model.answer_bias = float(view.intercept_[0])
            model.answer_share = s.answer_share
    return model


def predict_matrix(model: VerdictModel, p: Prepared) -> np.ndarray:
    """Probabilities for rows of training matrices (same numbers as scoring each text)."""
    z = (p.d - model.dense_mean) / model.dense_scale
    prob = _softmax(np.asarray(p.x @ model.weights) + z @ model.dense_weights + model.bias)
    if model.answer_share:
        score = np.asarray(_tfidf(p.a, model.answer_idf) @ model.answer_weights).ravel() + model.answer_bias
        prob = _blend(prob, 1.0 / (1.0 + np.exp(-score)), model.classes.index("answer"), model.answer_share)
    return prob


def cross_validate(
    examples: Sequence[Example],
    lexicon: Lexicon,
    settings: Settings | None = None,
    folds: int = 5,
    prepared: Prepared | None = None,
) -> tuple[list[str], np.ndarray, list[str]]:
    """Out-of-fold predictions, grouped by question (never a question in its own training folds):
    (predicted, probabilities, classes)."""
    from sklearn.model_selection import GroupKFold

    groups = [e.group for e in examples]
    labels = [e.label for e in examples]
    answers = [e.is_answer() for e in examples]
    n_groups = len(set(groups))
    if n_groups < 2:
        raise UsageError("grouped cross-validation needs answers to at least two different questions")
    p = prepared or matrix(examples, lexicon)
    classes = sorted(set(labels))
    prob = np.zeros((len(examples), len(classes)))
    for train_idx, test_idx in GroupKFold(n_splits=min(folds, n_groups)).split(labels, groups=groups):
        model = fit_matrix(
            p.take(train_idx),
            [labels[i] for i in train_idx],
            [answers[i] for i in train_idx],
            [groups[i] for i in train_idx],
            lexicon,
            settings,
        )
        fold = predict_matrix(model, p.take(test_idx))
        for k, c in enumerate(model.classes):
            prob[test_idx, classes.index(c)] = fold[:, k]
    return [classes[int(i)] for i in prob.argmax(axis=1)], prob, classes


def isotonic(top: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The calibration curve (x, y) from out-of-fold top probabilities and whether they were right."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(top, correct.astype(float))
    x = np.asarray(iso.X_thresholds_, dtype=np.float64)
    y = np.asarray(iso.y_thresholds_, dtype=np.float64)
    return np.concatenate([[0.0], x, [1.0]]), np.concatenate([[y[0]], y, [y[-1]]])


def _f1(p: float | None, r: float | None) -> float | None:
    return None if p is None or r is None or p + r == 0 else 2 * p * r / (p + r)


def scores(truth: Sequence[str], pred: Sequence[str], langs: Sequence[str]) -> dict[str, Any]:
    """Per-language and overall figures: accuracy, kappa, answer-vs-not accuracy, per-class P/R/F1."""

    def one(idx: list[int]) -> dict[str, Any]:
        m = metrics([truth[i] for i in idx], [pred[i] for i in idx])
        per_class = {c: {**v, "f1": _f1(v["precision"], v["recall"])} for c, v in m["per_class"].items()}
        return {
            "n": m["n"],
            "accuracy": m["accuracy"],
            "kappa": m["kappa"],
            "binary_accuracy": m["binary_accuracy"],
            "per_class": per_class,
        }

    out = {"all": one(list(range(len(truth))))}
    for lang in sorted(set(langs)):
        out[lang] = one([i for i, x in enumerate(langs) if x == lang])
    return out


def train(
    examples: Sequence[Example],
    lexicon: Lexicon,
    settings: Settings | None = None,
    folds: int = 5,
    threshold: float = 0.9,
) -> tuple[VerdictModel, dict[str, Any]]:
    """Grouped cross-validation (figures and the calibration curve come from out-of-fold predictions
    only), then one fit on everything for the saved model. Returns (model, report)."""
    from sklearn.model_selection import GroupKFold

    s = settings or Settings()
    originals = len(examples)
    rows = list(examples) + augmented(examples)  # openings train only; every figure is on the originals
    prepared = matrix(rows, lexicon)
    pred, prob, classes = cross_validate(rows, lexicon, s, folds, prepared)
    pred, prob = pred[:originals], prob[:originals]
    truth = [e.label for e in examples]
    langs = [e.lang for e in examples]
    top = prob.max(axis=1)
    correct = np.asarray([t == p for t, p in zip(truth, pred)])
    cal_x, cal_y = isotonic(top, correct)
    # the calibration's own error, measured honestly: a curve fitted on other folds, applied to this one
    conf = np.zeros(len(examples))
    groups = [e.group for e in examples]
    for tr, te in GroupKFold(n_splits=min(folds, len(set(groups)))).split(truth, groups=groups):
        fx, fy = isotonic(top[tr], correct[tr])
        conf[te] = np.interp(top[te], fx, fy)
    sure = conf >= threshold
    report = {
        "n": len(examples),
        "augmented_openings": len(rows) - originals,
        "classes": classes,
        "folds": folds,
        "grouped_by": "question",
        "label_counts": {
            lang: {c: sum(1 for e in examples if e.lang == lang and e.label == c) for c in classes}
            for lang in sorted(set(langs))
        },
        "cv": scores(truth, pred, langs),
        # answer-or-not out of fold against the second labeller's agreed verdict, where there is one
        "answer_vs_second_labels": {
            lang: {
                "n": len(idx),
                "accuracy": float(np.mean([(pred[i] == "answer") == examples[i].answer for i in idx])),
            }
            for lang in sorted(set(langs))
            for idx in [[i for i, e in enumerate(examples) if e.lang == lang and e.answer is not None]]
            if idx
        },
        "cv_by_source": {
            src: scores([truth[i] for i in idx], [pred[i] for i in idx], [langs[i] for i in idx])
            for src in sorted({e.source for e in examples})
            for idx in [[i for i, e in enumerate(examples) if e.source == src]]
        },
        "calibration": {
            "ece_raw": calibration_summary(truth, pred, list(map(float, top)))["ece"],  # type: ignore[index]
            "ece_calibrated": calibration_summary(truth, pred, list(map(float, conf)))["ece"],  # type: ignore[index]
            "threshold": threshold,
            "share_at_or_above": float(sure.mean()),
            "accuracy_at_or_above": float(correct[sure].mean()) if sure.any() else None,
            "escalated_share_at_threshold": float(1 - sure.mean()),
        },
        "settings": {
            "c": s.c,
            "min_questions": s.min_questions,
            "class_weight": s.class_weight,
            "bits": BITS,
            "ngrams": list(NGRAMS),
            "head_chars": HEAD_CHARS,
            "body_chars": BODY_CHARS,
            "answer_view": {
                "ngrams": list(ANSWER_NGRAMS),
                "c": s.answer_c,
                "share": s.answer_share,
                "min_questions": _view_bar(s, [e.group for e in examples]),
                "trained_on_second_labels": sum(e.answer is not None for e in examples),
            },
        },
        "out_of_fold": [{"pred": p, "confidence": round(float(c), 4)} for p, c in zip(pred, conf)],
    }
    model = fit_matrix(
        prepared, [e.label for e in rows], [e.is_answer() for e in rows], [e.group for e in rows], lexicon, s
    )
    model.calibration_x, model.calibration_y = cal_x, cal_y
    return model, report
