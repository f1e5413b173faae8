"""`clf:PATH`: a small local classifier trained on verdicts an LLM judge already gave (`deccp-eval
train-judge --from JUDGE`), so the next answers are judged for free; its confidence is the calibrated
probability of the verdict (deccp_eval.classifier). Load only classifiers you trained yourself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from deccp_eval.backend import BackendFactory, BackendOptions
from deccp_eval.classifier import features, load
from deccp_eval.errors import UsageError
from deccp_eval.hookspecs import hookimpl
from deccp_eval.judge import Judge, JudgeItem, OnJudgment
from deccp_eval.schema import Judgment, Verdict, canonical_hash


class ClassifierJudge(Judge):
    name = "clf"
    description = "local char n-gram classifier trained on stored LLM verdicts: clf:PATH (deccp-eval train-judge)"

    def __init__(self, arg: str = "", options: BackendOptions | None = None,
                 backends: BackendFactory | None = None) -> None:
        super().__init__(arg, options, backends)
        if not arg:
            raise UsageError("clf needs a path: clf:PATH (make one with `deccp-eval train-judge --from JUDGE`)")
        self.path = Path(arg)
        self._model: Any = None

    def check(self) -> None:
        if not self.path.is_file():
            raise UsageError(f"clf:{self.arg}: no such file (make one with `deccp-eval train-judge --from JUDGE`)")

    @property
    def template_hash(self) -> str:
        return canonical_hash({"clf": self.path.read_bytes().hex() if self.path.is_file() else ""})[:16]

    def model(self) -> Any:
        if self._model is None:
            self.check()
            self._model = load(self.path)
        return self._model

    def judge(self, items: Sequence[JudgeItem], on_judgment: OnJudgment) -> None:
        if not items:
            return
        model = self.model()
        probs = model.predict_proba([features(i.prompt, i.response) for i in items])
        classes = list(model.classes_)
        thash = self.template_hash
        for item, p in zip(items, probs):
            best = max(range(len(classes)), key=lambda k: p[k])
            ranked = ", ".join(f"{classes[k]}={p[k]:.2f}" for k in sorted(range(len(classes)), key=lambda k: -p[k]))
            on_judgment(Judgment(response_key=item.response_key, judge=self.id, template_hash=thash,
                                 verdict=Verdict(classes[best]), confidence=round(float(p[best]), 4),
                                 rationale=f"classifier probabilities: {ranked}"))


@hookimpl
def register_judges(register: Callable[..., Any]) -> None:
    register(ClassifierJudge)
