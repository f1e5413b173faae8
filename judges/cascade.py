"""`cascade:CHEAP,STRONG[,...]`: the first judge's verdict stands when it is confident; the rest go on.

A member's verdict stands when its confidence is at least `escalate_below` (JudgeOptions, the
`--escalate-below` flag, default 0.8); items below it (or unparsed, or without a confidence) go to
the next member, and the last member decides whatever is left. Each judgment records the member that
decided (`decided_by`) and every member's verdict, so `validate-judge` can report the share escalated:
the cost. Example: `cascade:keyword,llm:openai:gpt-4o-mini`, or with a trained classifier in the
middle: `cascade:keyword,clf:judge.clf,llm:openai:gpt-4o-mini`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from deccp_eval.backends.contract import BackendFactory, BackendOptions
from deccp_eval.base.hookspecs import hookimpl
from deccp_eval.base.schema import Judgment, ParseStatus, canonical_hash
from deccp_eval.judging.contract import CompositeJudge, JudgeItem, OnJudgment, collect_into, member_judges

DEFAULT_THRESHOLD = 0.8


class CascadeJudge(CompositeJudge):
    name = "cascade"
    description = (
        "cheap judge first, escalate low-confidence items: cascade:keyword,llm:openai:MODEL (--escalate-below)"
    )

    def __init__(
        self, arg: str = "", options: BackendOptions | None = None, backends: BackendFactory | None = None
    ) -> None:
        super().__init__(arg, options, backends)
        members = member_judges(
            "cascade", arg, options, forbidden=("cascade", "panel"), hint=", cheapest first", backends=self.backends
        )
        threshold = self.options.judge.escalate_below  # in [0, 1]: JudgeOptions checks it
        self.threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        self.members = members

    @property
    def template_hash(self) -> str:
        return canonical_hash(
            {"members": [[m.id, m.template_hash] for m in self.members], "escalate_below": self.threshold}
        )[:16]

    def confident(self, j: Judgment | None) -> bool:
        return (
            j is not None
            and j.parse_status is ParseStatus.OK
            and j.verdict is not None
            and j.confidence is not None
            and j.confidence >= self.threshold
        )

    def judge(self, items: Sequence[JudgeItem], on_judgment: OnJudgment) -> None:
        trail: dict[str, list[dict[str, Any]]] = {i.response_key: [] for i in items}
        left = list(items)
        for n, member in enumerate(self.members):
            if not left:
                break
            got: dict[str, Judgment] = {}
            try:
                member.judge(left, collect_into(got))
            finally:
                member.close()  # one member's model at a time on a GPU or a cluster
            last = n == len(self.members) - 1
            still: list[JudgeItem] = []
            for item in left:
                j = got.get(item.response_key)
                trail[item.response_key].append(
                    {
                        "judge": member.id,
                        "verdict": j.verdict.value if j and j.verdict else None,
                        "confidence": j.confidence if j else None,
                        "parse_status": j.parse_status.value if j else "missing",
                    }
                )
                if self.confident(j) or (last and j is not None):
                    assert j is not None
                    on_judgment(self._decided(item, j, member.id, trail[item.response_key]))
                else:
                    still.append(item)
            left = still

    def _decided(self, item: JudgeItem, j: Judgment, member: str, members: list[dict[str, Any]]) -> Judgment:
        path = " -> ".join(
            f"{m['judge']}={m['verdict']}" + (f" ({m['confidence']:.2f})" if m["confidence"] is not None else "")
            for m in members
        )
        return j.model_copy(
            update={
                "response_key": item.response_key,
                "judge": self.id,
                "template_hash": self.template_hash,
                "decided_by": member,
                "members": members,
                "rationale": f"decided by {member} (escalate below {self.threshold:g}): {path}\n" + (j.rationale or ""),
            }
        )


@hookimpl
def register_judges(register: Callable[..., Any]) -> None:
    register(CascadeJudge)
