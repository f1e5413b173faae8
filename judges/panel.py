"""`panel:SPEC1,SPEC2,...`: several judges vote; each member's verdict is kept.

Majority vote over members that produced a parsable verdict. Ties go to the tied label chosen by
the earliest-listed member (the first member chairs the panel). Accuracy and misinformation are
voted the same way among members that graded them. No parsable member verdict: `unparsed`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from deccp_eval.backends.contract import BackendFactory, BackendOptions
from deccp_eval.base.hookspecs import hookimpl
from deccp_eval.base.schema import Accuracy, Judgment, ParseStatus, Verdict, canonical_hash
from deccp_eval.judging.contract import CompositeJudge, JudgeItem, OnJudgment, collect_into, member_judges


def vote(values: Sequence[Any]) -> Any:
    """Majority of the non-None values, ties to the earliest-listed; None when there are none."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    counts = Counter(present)
    top = max(counts.values())
    return next(v for v in present if counts[v] == top)


class PanelJudge(CompositeJudge):
    name = "panel"
    description = "majority vote of judges: panel:SPEC1,SPEC2,SPEC3 (ties: earliest-listed member)"

    def __init__(
        self, arg: str = "", options: BackendOptions | None = None, backends: BackendFactory | None = None
    ) -> None:
        super().__init__(arg, options, backends)
        self.members = member_judges("panel", arg, options, forbidden=("panel",), backends=self.backends)

    @property
    def template_hash(self) -> str:
        return canonical_hash([[m.id, m.template_hash] for m in self.members])[:16]

    def judge(self, items: Sequence[JudgeItem], on_judgment: OnJudgment) -> None:
        got: list[dict[str, Judgment]] = []
        for member in self.members:
            mine: dict[str, Judgment] = {}
            try:
                member.judge(items, collect_into(mine))
            finally:
                member.close()  # one member's model at a time on a GPU or a cluster
            got.append(mine)
        for item in items:
            per = [g.get(item.response_key) for g in got]
            ok = [j if j is not None and j.parse_status is ParseStatus.OK else None for j in per]
            verdict = vote([j.verdict if j else None for j in ok])
            accuracy = vote([j.accuracy if j else None for j in ok])
            misinfo = vote([j.misinformation if j else None for j in ok])
            members = [
                {
                    "judge": m.id,
                    "verdict": j.verdict.value if j and j.verdict else None,
                    "accuracy": j.accuracy.value if j and j.accuracy else None,
                    "misinformation": j.misinformation if j else None,
                    "parse_status": j.parse_status.value if j else "missing",
                }
                for m, j in zip(self.members, per)
            ]
            votes = ", ".join(f"{m['judge']}={m['verdict']}" for m in members)
            on_judgment(
                Judgment(
                    response_key=item.response_key,
                    judge=self.id,
                    template_hash=self.template_hash,
                    verdict=Verdict(verdict) if verdict else None,
                    accuracy=Accuracy(accuracy) if accuracy else None,
                    misinformation=misinfo,
                    rationale=f"votes: {votes}",
                    members=members,
                    parse_status=ParseStatus.OK if verdict else ParseStatus.UNPARSED,
                )
            )


@hookimpl
def register_judges(register: Callable[..., Any]) -> None:
    register(PanelJudge)
