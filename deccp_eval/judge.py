"""The judge contract, at the path third-party plugins import: a thin re-export of
`deccp_eval.judging.contract`."""

from deccp_eval.judging.contract import (JudgeItem, OnJudgment, Judge, judge_answers, make_judge, member_judges,
                                         CompositeJudge)

__all__ = ["JudgeItem", "OnJudgment", "Judge", "judge_answers", "make_judge", "member_judges", "CompositeJudge"]
