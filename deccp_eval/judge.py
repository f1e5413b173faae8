"""The judge contract, at the path third-party plugins import: a thin re-export of
`deccp_eval.judging.contract`."""

from deccp_eval.judging.contract import (
    CompositeJudge,
    Judge,
    JudgeItem,
    OnJudgment,
    judge_answers,
    make_judge,
    member_judges,
)

__all__ = ["JudgeItem", "OnJudgment", "Judge", "judge_answers", "make_judge", "member_judges", "CompositeJudge"]
