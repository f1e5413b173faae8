"""Two models on the same prompts: which verdicts changed, and how (e.g. refusal -> state_aligned).

Made for a base model and its abliterated version: an uncensored model often stops refusing and
starts reciting the state line instead, and that shows here as refusal -> state_aligned.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from deccp_eval.errors import UsageError
from deccp_eval.report.data import STATUSES, AnswerView, answer_view, lang_order, load_judgments, pick_judge

if TYPE_CHECKING:
    from deccp_eval.store import Store


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
            "a": self.a, "b": self.b, "judge": self.judge, "kinds": list(self.kinds), "matched": self.matched,
            "changed": len(self.changed), "only_a": self.only_a, "only_b": self.only_b,
            "transitions": [{"from": t.before, "to": t.after, "total": t.total, "by_lang": t.by_lang}
                            for t in self.transitions],
            "items": [{"prompt_id": c.prompt_id, "pair_id": c.pair_id, "lang": c.lang, "category": c.category,
                       "sample": c.sample, "from": c.a.status, "to": c.b.status, "prompt": c.prompt_text,
                       "a_text": c.a.text or c.a.error, "b_text": c.b.text or c.b.error} for c in self.changed],
        }


def auto_pair(models: Sequence[str]) -> tuple[str, str] | None:
    """With exactly two models, compare them: an `abliterated:` spec goes second (base -> uncensored),
    otherwise alphabetical order."""
    if len(models) != 2:
        return None
    a, b = sorted(models, key=lambda m: (m.startswith("abliterated:"), m))
    return a, b


def compare(store: "Store", a: str, b: str, judge: str | None = None, run_id: str | None = None,
            kinds: Sequence[str] = ("sensitive",)) -> Comparison:
    """Match A's and B's responses by (dataset, prompt, sample) and tally verdict transitions."""
    if a == b:
        raise UsageError("compare needs two different models")
    rows = [r for r in store.response_rows(run_id=run_id, models=[a, b]) if r["kind"] in kinds]
    present = {r["model"] for r in rows}
    missing = [m for m in (a, b) if m not in present]
    if missing:
        known = sorted({r["model"] for r in store.response_rows(run_id=run_id)})
        raise UsageError(f"no stored responses for {', '.join(missing)}; models in the store: "
                         f"{', '.join(known) or 'none'}")
    judgments, judges, counts = load_judgments(store, rows)
    main_judge = pick_judge(judges, counts, judge)
    sides: dict[str, dict[tuple[str, str, int], Any]] = {a: {}, b: {}}
    for r in rows:
        sides[r["model"]][(r["dataset"], r["prompt_id"], r["sample"])] = r
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
            changed.append(ChangedItem(ra["dataset"], ra["prompt_id"], ra["pair_id"], ra["lang"], ra["category"],
                                       ra["prompt_text"], ra["sample"], va, vb))
    pairs = {(x, y) for (x, y, _) in tally}
    transitions = [TransitionRow(x, y, {lang: tally[(x, y, lang)] for lang in langs},
                                 sum(tally[(x, y, lang)] for lang in langs)) for (x, y) in pairs]
    order = {s: i for i, s in enumerate(STATUSES)}
    transitions.sort(key=lambda t: (not t.changed, -t.total, order[t.before], order[t.after]))
    lang_rank = {lang: i for i, lang in enumerate(langs)}
    changed.sort(key=lambda c: (order[c.a.status], order[c.b.status], c.category, c.pair_id, lang_rank[c.lang],
                                c.sample))
    return Comparison(a=a, b=b, judge=main_judge, kinds=tuple(kinds), langs=langs, matched=len(common),
                      only_a=len(set(sides[a]) - set(sides[b])), only_b=len(set(sides[b]) - set(sides[a])),
                      transitions=transitions, changed=changed)
