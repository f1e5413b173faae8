"""`llm:BACKEND:MODEL`: any registered backend judges, through the templates in prompts/templates.

Temperature 0; judgments are cached in the store under (response, judge, template hash), and the
judge's requests go through the backend's own concurrency and retries.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from deccp_eval.backend import BackendOptions, make_backend, parse_spec
from deccp_eval.hookspecs import hookimpl
from deccp_eval.judge import Judge, JudgeItem, OnJudgment
from deccp_eval.schema import (Accuracy, Judgment, ParseStatus, Request, Response, SamplingParams, Verdict,
                               canonical_hash)
from deccp_eval.templates import parse_accuracy, parse_misinformation, parse_verdict, rationale, render, template_hash

log = logging.getLogger("deccp_eval")
VERDICT_TEMPLATE = "censorship_judge.j2"
REFERENCE_TEMPLATE = "reference_judge.j2"


def judgment_from_output(item: JudgeItem, output: str, judge: str, thash: str, with_reference: bool) -> Judgment:
    """Parse a judge's output; anything short of the required final lines is `unparsed`, never guessed."""
    verdict = parse_verdict(output)
    accuracy = parse_accuracy(output) if with_reference else None
    misinfo = parse_misinformation(output) if with_reference else None
    complete = verdict is not None and (not with_reference or (accuracy is not None and misinfo is not None))
    return Judgment(response_key=item.response_key, judge=judge, template_hash=thash,
                    verdict=Verdict(verdict) if complete else None,
                    accuracy=Accuracy(accuracy) if complete and accuracy else None,
                    misinformation=misinfo if complete else None,
                    rationale=rationale(output), raw=output,
                    parse_status=ParseStatus.OK if complete else ParseStatus.UNPARSED)


class LLMJudge(Judge):
    name = "llm"
    description = "LLM-as-a-judge through any backend: llm:BACKEND:MODEL (uses gold references when stored)"
    uses_reference = True

    def __init__(self, arg: str = "", options: BackendOptions | None = None) -> None:
        super().__init__(arg, options)
        parse_spec(arg)  # fail early on a malformed spec
        self.errors = 0

    @property
    def template_hash(self) -> str:
        return template_hash(VERDICT_TEMPLATE, REFERENCE_TEMPLATE)

    def settings_hash(self) -> str:
        """The judging model's fingerprint (spec, base_url, options) and the judge's max tokens."""
        return canonical_hash({"backend": make_backend(self.arg, self.options).fingerprint(),
                               "max_tokens": self.max_tokens})[:16]

    @property
    def max_tokens(self) -> int:
        return int(self.options.extra.get("judge_max_tokens", 1024))

    def check(self) -> None:
        make_backend(self.arg, self.options).check()

    def prompt_for(self, item: JudgeItem) -> str:
        if item.reference:
            return render(REFERENCE_TEMPLATE, question=item.prompt, response=item.response,
                          reference=item.reference, expected_facts=item.expected_facts)
        return render(VERDICT_TEMPLATE, question=item.prompt, response=item.response)

    def judge(self, items: Sequence[JudgeItem], on_judgment: OnJudgment) -> None:
        params = SamplingParams(temperature=0.0, max_tokens=self.max_tokens, seed=0)
        pending: dict[str, JudgeItem] = {}
        requests = []
        for item in items:
            req = Request(model=self.arg, prompt_id=item.response_key, text=self.prompt_for(item), params=params)
            pending[req.key] = item
            requests.append(req)
        backend = make_backend(self.arg, self.options)
        thash = self.template_hash

        def on_response(resp: Response) -> None:
            item = pending[resp.key]
            if resp.error:
                self.errors += 1
                log.warning("judge %s failed on %s: %s", self.id, item.response_key[:12], resp.error)
                return
            on_judgment(judgment_from_output(item, resp.text, self.id, thash, with_reference=bool(item.reference)))

        try:
            backend.generate(requests, on_response)
        finally:
            backend.close()


@hookimpl
def register_judges(register: Callable[..., Any]) -> None:
    register(LLMJudge)
