"""`clf`: the trained offline judge (the default). `clf` alone is the model shipped in
`judges/models/` (trained on real models' answers with four-class labels, card beside it);
`clf:PATH` is one you trained with `deccp-eval train-judge` (from a label file or from verdicts an LLM
judge already stored). Files hold arrays only (no pickle); scoring is numpy, about a thousand long
answers a second on one core. Every verdict carries a calibrated confidence and a rationale quoting the reply's
phrases where the evidence sits, and the signals that decided it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deccp_eval.backends.contract import BackendFactory, BackendOptions
from deccp_eval.backends.fingerprint import file_sha256
from deccp_eval.base import reasoning, text
from deccp_eval.base.errors import UsageError
from deccp_eval.base.hookspecs import hookimpl
from deccp_eval.base.schema import Judgment, Verdict, canonical_hash
from deccp_eval.base.sources import source_hash
from deccp_eval.base.text import normalise
from deccp_eval.judging import classifier, lexicon, spans
from deccp_eval.judging.classifier import VerdictModel, load
from deccp_eval.judging.contract import Judge, JudgeItem, OnJudgment
from deccp_eval.judging.lexicon import says_nothing

SHIPPED = Path(__file__).resolve().parent / "models" / "deccp-clf.npz"
# The modules whose source, besides this one's, is hashed into template_hash (docs/ARCHITECTURE.md lists them).
SOURCE_MODULES = (classifier, spans, reasoning, lexicon, text)


def _source_hash() -> str:
    """The code that turns text into features and the rules beside the model: a change there changes verdicts
    as surely as new weights."""
    return source_hash(sys.modules[__name__], *SOURCE_MODULES)


class ClassifierJudge(Judge):
    name = "clf"
    description = (
        "trained offline judge (default): the shipped model, or clf:PATH from `deccp-eval train-judge`; "
        "calibrated confidence, rationale quoting the phrases that decided"
    )

    def __init__(
        self, arg: str = "", options: BackendOptions | None = None, backends: BackendFactory | None = None
    ) -> None:
        super().__init__(arg, options, backends)
        self.path = Path(arg) if arg else SHIPPED
        self._model: VerdictModel | None = None
        self._hash: str | None = None

    def check(self) -> None:
        if not self.path.is_file():
            if not self.arg:
                raise UsageError(f"the shipped judge model is missing ({self.path}); reinstall deccp-eval")
            raise UsageError(f"clf:{self.arg}: no such file (make one with `deccp-eval train-judge`)")

    @property
    def template_hash(self) -> str:
        """The weights file's hash and the featurising code's: anything that can change a verdict."""
        if self._hash is None:
            self.check()
            self._hash = canonical_hash({"weights": file_sha256(self.path), "code": _source_hash()})[:16]
        return self._hash

    def model(self) -> VerdictModel:
        if self._model is None:
            self.check()
            self._model = load(self.path)
        return self._model

    def judge(self, items: Sequence[JudgeItem], on_judgment: OnJudgment) -> None:
        if not items:
            return
        model = self.model()
        thash = self.template_hash
        for item in items:
            if not item.response.strip():  # nothing came back (a provider's content filter): as the rule judge
                on_judgment(
                    Judgment(
                        response_key=item.response_key,
                        judge=self.id,
                        template_hash=thash,
                        verdict=Verdict.REFUSAL,
                        confidence=0.95,
                        rationale="refusal (0.95): empty reply",
                    )
                )
                continue
            if len(item.response) < 400 and says_nothing(normalise(item.response)):
                # a reply of framing words only ("Sure. Here is a short, practical answer."): n-grams of
                # fluent framing read like an answer, so this is a rule, as in the keyword judge
                on_judgment(
                    Judgment(
                        response_key=item.response_key,
                        judge=self.id,
                        template_hash=thash,
                        verdict=Verdict.EVASIVE,
                        confidence=0.9,
                        rationale="evasive (0.90): content-free, nothing addresses the question",
                    )
                )
                continue
            verdict, _, confidence, why = model.explain(item.response, item.prompt)
            on_judgment(
                Judgment(
                    response_key=item.response_key,
                    judge=self.id,
                    template_hash=thash,
                    verdict=Verdict(verdict),
                    confidence=round(confidence, 4),
                    rationale=f"{verdict} ({confidence:.2f}): {why}",
                )
            )


@hookimpl
def register_judges(register: Callable[..., Any]) -> None:
    register(ClassifierJudge)
