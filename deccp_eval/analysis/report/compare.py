"""Two models on the same prompts: which verdicts changed, and how (e.g. refusal -> state_aligned).

Made for a base model and its abliterated version: an uncensored model often stops refusing and
starts reciting the state line instead, and that shows here as refusal -> state_aligned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deccp_eval.analysis.report.views import STATUSES, AnswerView, answer_view, lang_order, load_judgments
from deccp_eval.base.errors import UsageError
from deccp_eval.store.db import Store, pick_judge


@dataclass
class ChangedItem:
    """One prompt (and sample) whose verdict differs between the two models, with both answers."""

    dataset: str
    prompt_id: str
    pair_id: str
    lang: str
    category: str
    prompt_text: str
    sample: int
    a: AnswerView
    b: AnswerView

    @property
    def transition(self) -> str:
        return f"{self.a.status}→{self.b.status}"


@dataclass
class TransitionRow:
    before: str
    after: str
    by_lang: dict[str, int]
    total: int

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def name(self) -> str:
        return f"{self.before}→{self.after}"


@dataclass
class Comparison:
    a: str
    b: str
    judge: str | None
    kinds: tuple[str, ...]
    langs: list[str]
    matched: int
    only_a: int
    only_b: int
    transitions: list[TransitionRow]
    changed: list[ChangedItem] = field(default_factory=list)

    @property
    def statuses(self) -> list[str]:
        """Statuses that occur on either side, in taxonomy order: the labels of the matrix."""
        seen = {t.before for t in self.transitions} | {t.after for t in self.transitions}
        return [s for s in STATUSES if s in seen]

    def matrix(self) -> dict[tuple[str, str], int]:
        return {(t.before, t.after): t.total for t in self.transitions}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary for `compare --json` and scripts."""
        return {
            "a": self.a,
            "b": self.b,
            "judge": self.judge,
            "kinds": list(self.kinds),
            "matched": self.matched,
            "changed": len(self.changed),
            "only_a": self.only_a,
            "only_b": self.only_b,
            "transitions": [
                {"from": t.before, "to": t.after, "total": t.total, "by_lang": t.by_lang} for t in self.transitions
            ],
            "items": [
                {
                    "prompt_id": c.prompt_id,
                    "pair_id": c.pair_id,
                    "lang": c.lang,
                    "category": c.category,
                    "sample": c.sample,
                    "from": c.a.status,
                    "to": c.b.status,
                    "prompt": c.prompt_text,
                    "a_text": c.a.text or c.a.error,
                    "b_text": c.b.text or c.b.error,
                }
                for c in self.changed
            ],
        }


Pairs = Sequence[str] | Sequence[Sequence[str]]  # one flat (A, B), or a list of (A, B)


def realign_base(spec: str) -> str | None:
    """The spec a re-aligned model was trained from: `base_model` in the `realign.json` of the folder
    that `spec` (BACKEND:FOLDER) loads, as a spec (`realign.model_spec`: a bare name or folder is
    `hf:`), or None when it is no such folder or the record is unreadable."""
    import json

    _, sep, path = spec.partition(":")
    if not sep or not Path(path).is_dir():  # most specs (hub names): no need to load the training stack
        return None
    from deccp_eval.training.realign import RECORD_FILE, model_spec  # lazy: it loads the training stack (~0.25 s)

    record = Path(path) / RECORD_FILE
    if not record.is_file():
        return None
    try:
        base = json.loads(record.read_text(encoding="utf-8")).get("base_model")
    except (OSError, ValueError, AttributeError):
        return None
    return model_spec(base) if isinstance(base, str) and base else None


def derived_base(spec: str) -> str | None:
    """The spec of the model that `spec`'s was made from, as its backend class declares it
    (`Backend.derived_from`: `hf:X` for `abliterated:X`); None for a model in its own right, or one
    whose backend is not installed here."""
    from deccp_eval.backends.contract import backend_class, parse_spec

    try:
        return backend_class(spec).derived_from(parse_spec(spec)[1])
    except UsageError:
        return None


def auto_pairs(models: Sequence[str], base_of: Callable[[str], str | None] = realign_base) -> list[tuple[str, str]]:
    """The comparisons a report shows unasked: each model after the one it was made from, when both
    are stored: a model after the one its backend says it derives from (`derived_base`: `hf:X` ->
    `abliterated:X`), and a re-aligned folder (`base_of`: its realign.json's `base_model`) after its
    base. Ordered along the chains (base -> abliterated -> re-aligned reads top to bottom). With
    exactly two unrelated models, those two (a derived one such as an `abliterated:` spec second,
    otherwise alphabetical); nothing else is paired."""
    present = set(models)
    derived = {m: derived_base(m) for m in present}
    children: dict[str, list[str]] = {}
    has_parent: set[str] = set()
    for m in sorted(present):
        for parent in (derived[m], base_of(m)):
            if parent in present and parent != m and m not in has_parent:
                children.setdefault(parent, []).append(m)
                has_parent.add(m)
    if not children:
        if len(present) != 2:
            return []
        a, b = sorted(present, key=lambda m: (derived[m] is not None, m))
        return [(a, b)]
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()

    def walk(parent: str) -> None:
        seen.add(parent)
        for child in sorted(children.get(parent, []), key=lambda m: (derived[m] is None, m)):
            if child not in seen:
                pairs.append((parent, child))
                walk(child)

    for root in sorted(present - has_parent):
        walk(root)
    return pairs


def as_pairs(compare: Pairs) -> list[tuple[str, str]]:
    """Explicit comparisons: one flat (A, B) or a list of such pairs, duplicates dropped in order."""
    items = [compare] if len(compare) == 2 and all(isinstance(x, str) for x in compare) else list(compare)
    pairs: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, str) or len(item) != 2:
            raise UsageError(f"a comparison is two model specs (A B), got {item!r}")
        pair = (str(item[0]), str(item[1]))
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def compare(
    store: Store,
    a: str,
    b: str,
    judge: str | None = None,
    run_id: str | None = None,
    kinds: Sequence[str] = ("sensitive",),
) -> Comparison:
    """Match A's and B's responses by (dataset, prompt, sample) and tally verdict transitions."""
    if a == b:
        raise UsageError("compare needs two different models")
    rows = [r for r in store.response_rows(run_id=run_id, models=[a, b]) if r.kind in kinds]
    present = {r.model for r in rows}
    missing = [m for m in (a, b) if m not in present]
    if missing:
        known = sorted({r.model for r in store.response_rows(run_id=run_id)})
        raise UsageError(
            f"no stored responses for {', '.join(missing)}; models in the store: {', '.join(known) or 'none'}"
        )
    judgments, judges, counts = load_judgments(store, rows)
    main_judge = pick_judge(judges, judge, counts)
    sides: dict[str, dict[tuple[str, str, int], Any]] = {a: {}, b: {}}
    for r in rows:
        sides[r.model][(r.dataset, r.prompt_id, r.sample)] = r
    common = sorted(set(sides[a]) & set(sides[b]))
    langs = lang_order([sides[a][k]["lang"] for k in common])
    tally: Counter[tuple[str, str, str]] = Counter()
    changed: list[ChangedItem] = []
    for k in common:
        ra, rb = sides[a][k], sides[b][k]
        va = answer_view(ra, judgments, judges, main_judge)
        vb = answer_view(rb, judgments, judges, main_judge)
        tally[(va.status, vb.status, ra["lang"])] += 1
        if va.status != vb.status:
            changed.append(
                ChangedItem(
                    ra["dataset"],
                    ra["prompt_id"],
                    ra["pair_id"],
                    ra["lang"],
                    ra["category"],
                    ra["prompt_text"],
                    ra["sample"],
                    va,
                    vb,
                )
            )
    pairs = {(x, y) for (x, y, _) in tally}
    transitions = [
        TransitionRow(x, y, {lang: tally[(x, y, lang)] for lang in langs}, sum(tally[(x, y, lang)] for lang in langs))
        for (x, y) in pairs
    ]
    order = {s: i for i, s in enumerate(STATUSES)}
    transitions.sort(key=lambda t: (not t.changed, -t.total, order[t.before], order[t.after]))
    lang_rank = {lang: i for i, lang in enumerate(langs)}
    changed.sort(
        key=lambda c: (order[c.a.status], order[c.b.status], c.category, c.pair_id, lang_rank[c.lang], c.sample)
    )
    return Comparison(
        a=a,
        b=b,
        judge=main_judge,
        kinds=tuple(kinds),
        langs=langs,
        matched=len(common),
        only_a=len(set(sides[a]) - set(sides[b])),
        only_b=len(set(sides[b]) - set(sides[a])),
        transitions=transitions,
        changed=changed,
    )
