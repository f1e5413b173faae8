"""`llm:BACKEND:MODEL`: any registered backend judges, through the templates in prompts/templates.

Temperature 0; judgments are cached in the store under (response, judge, template hash), and the
judge's requests go through the backend's own concurrency and retries. The backend comes from the
factory the core hands the judge (`Judge.backends`): built here, or in Ray actors with `--executor
ray`; it is kept from one `judge` call to the next and freed by `close`.

Structured output where the backend class declares it (`Backend.structured_output`: e.g. OpenAI
`response_format` JSON schema, Anthropic forced tool use, vLLM structured outputs): the reply is one
JSON object; otherwise (or when a reply is not valid JSON) the `VERDICT:` text lines are parsed.
Anything short of a valid verdict is `unparsed`: kept with its raw text and counted, never mapped to
a class.

Confidence: the probability of the verdict's first token among the verdict classes, from the
backend's top log-probs (where it declares `Backend.logprobs`); else the share of `--judge-samples
N` samples that agree; else none. Few-shot examples (`--judge-examples FILE`, labelled JSONL) go inside the same
injection-safe markers as the judged data.

Settings (`BackendOptions.judge`, a JudgeOptions; `--backend-option judge_KEY=...`): `max_tokens`,
`samples` (N), `temperature` (for N > 1, default 0.7), `examples` (a path), `structured` (default true
where supported), `logprobs` (top alternatives asked for, default 5 where supported; 0 turns it off).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deccp_eval.backends.contract import Backend, BackendFactory, BackendOptions, backend_class
from deccp_eval.base.hookspecs import hookimpl
from deccp_eval.base.schema import (
    ACCURACIES,
    VERDICTS,
    Accuracy,
    Judgment,
    ParseStatus,
    Request,
    Response,
    SamplingParams,
    TokenLogprob,
    Verdict,
    canonical_hash,
)
from deccp_eval.judging.contract import Judge, JudgeItem, OnJudgment
from deccp_eval.judging.label_scores import load_labels
from deccp_eval.judging.templates import (
    parse_accuracy,
    parse_misinformation,
    parse_verdict,
    rationale,
    render,
    template_hash,
)

log = logging.getLogger("deccp_eval")
VERDICT_TEMPLATE = "censorship_judge.j2"
REFERENCE_TEMPLATE = "reference_judge.j2"
_JSON_VERDICT = re.compile(r'"verdict"\s*:\s*"', re.IGNORECASE)
_TEXT_VERDICT = re.compile(r"verdict[\W_]*[:：]\s*", re.IGNORECASE)


def judgment_schema(with_reference: bool) -> dict[str, Any]:
    """The JSON schema a structured judge reply follows: reasoning first, so the model reasons first."""
    props: dict[str, Any] = {"reasoning": {"type": "string"}, "verdict": {"type": "string", "enum": list(VERDICTS)}}
    if with_reference:
        props["accuracy"] = {"type": "string", "enum": list(ACCURACIES)}
        props["misinformation"] = {"type": "boolean"}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def _json_object(output: str) -> dict[str, Any] | None:
    start, end = output.find("{"), output.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        obj = json.loads(output[start : end + 1])
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _fields(output: str, with_reference: bool) -> tuple[str | None, str | None, bool | None, str]:
    """(verdict, accuracy, misinformation, rationale) from a JSON reply, else from the VERDICT: lines."""
    obj = _json_object(output)
    if obj is not None and "verdict" in obj:
        verdict = obj.get("verdict") if obj.get("verdict") in VERDICTS else None
        accuracy = obj.get("accuracy") if obj.get("accuracy") in ACCURACIES else None
        mis = obj.get("misinformation")
        mis = mis if isinstance(mis, bool) else {"yes": True, "no": False}.get(str(mis).lower()) if mis else None
        return (
            verdict,
            accuracy if with_reference else None,
            mis if with_reference else None,
            str(obj.get("reasoning") or ""),
        )
    accuracy = parse_accuracy(output) if with_reference else None
    misinfo = parse_misinformation(output) if with_reference else None
    return parse_verdict(output), accuracy, misinfo, rationale(output)


def verdict_confidence(logprobs: Sequence[TokenLogprob] | None, verdict: str) -> float | None:
    """P(verdict) at the verdict's first token, among the top alternatives that start a verdict class."""
    if not logprobs:
        return None
    text, spans = "", []
    for t in logprobs:
        spans.append((len(text), len(text) + len(t.token)))
        text += t.token
    marks = list(_JSON_VERDICT.finditer(text)) or list(_TEXT_VERDICT.finditer(text))
    if not marks:
        return None
    at = marks[-1].end()
    index = next((i for i, (_, end) in enumerate(spans) if end > at), None)
    if index is None:
        return None
    tok = logprobs[index]
    alternatives = dict(tok.top) or {tok.token: tok.logprob}
    alternatives.setdefault(tok.token, tok.logprob)
    mass: dict[str, float] = defaultdict(float)
    for token, lp in alternatives.items():
        stem = token.strip().strip('"').lower()
        classes = [c for c in VERDICTS if stem and c.startswith(stem)]
        if len(classes) == 1:
            mass[classes[0]] += math.exp(lp)
    total = sum(mass.values())
    if not total or verdict not in mass:
        return round(math.exp(tok.logprob), 4) if stem_matches(tok.token, verdict) else None
    return round(mass[verdict] / total, 4)


def stem_matches(token: str, verdict: str) -> bool:
    stem = token.strip().strip('"').lower()
    return bool(stem) and verdict.startswith(stem)


def judgment_from_output(
    item: JudgeItem,
    output: str,
    judge: str,
    thash: str,
    with_reference: bool,
    logprobs: Sequence[TokenLogprob] | None = None,
) -> Judgment:
    """Parse a judge's output; anything short of the required fields is `unparsed`, never guessed."""
    verdict, accuracy, misinfo, why = _fields(output, with_reference)
    complete = verdict is not None and (not with_reference or (accuracy is not None and misinfo is not None))
    return Judgment(
        response_key=item.response_key,
        judge=judge,
        template_hash=thash,
        verdict=Verdict(verdict) if complete else None,
        accuracy=Accuracy(accuracy) if complete and accuracy else None,
        misinformation=misinfo if complete else None,
        confidence=verdict_confidence(logprobs, verdict) if complete and verdict else None,
        rationale=why,
        raw=output,
        parse_status=ParseStatus.OK if complete else ParseStatus.UNPARSED,
    )


def combine_samples(samples: Sequence[Judgment]) -> Judgment:
    """Several samples of one judgment: the majority verdict; confidence from log-probs, else vote share."""
    ok = [j for j in samples if j.parse_status is ParseStatus.OK and j.verdict is not None]
    if not ok:
        return samples[0]
    counts = Counter(j.verdict for j in ok if j.verdict is not None)
    top = max(counts.values())
    verdict = next(
        j.verdict for j in ok if j.verdict is not None and counts[j.verdict] == top
    )  # ties: the earliest sample
    first = next(j for j in ok if j.verdict == verdict)
    probs = [j.confidence for j in ok if j.verdict == verdict and j.confidence is not None]
    share = top / len(samples)
    conf = sum(probs) / len(probs) * share if probs else share
    votes = ", ".join(f"{v.value}={n}" for v, n in counts.items())
    return first.model_copy(
        update={
            "confidence": round(conf, 4),
            "rationale": f"{len(samples)} samples: {votes}\n{first.rationale or ''}".strip(),
        }
    )


class LLMJudge(Judge):
    name = "llm"
    description = "LLM-as-a-judge through any backend: llm:BACKEND:MODEL (uses gold references when stored)"
    uses_reference = True

    def __init__(
        self, arg: str = "", options: BackendOptions | None = None, backends: BackendFactory | None = None
    ) -> None:
        super().__init__(arg, options, backends)
        self.backend_class = backend_class(arg)  # fail early on a malformed spec; its capabilities
        self.errors = 0
        self.backend: Backend | None = None  # built on first use, kept until close(): weights load once
        self.examples = self._load_examples()

    def _load_examples(self) -> list[dict[str, str]]:
        path = self.options.judge.examples
        if not path:
            return []

        return [
            {"question": r.prompt, "response": r.response, "label": r.label.value} for r in load_labels(Path(str(path)))
        ]

    @property
    def structured(self) -> bool:
        return self.options.judge.structured and self.backend_class.structured_output

    @property
    def top_logprobs(self) -> int | None:
        k = self.options.judge.logprobs
        return k if k > 0 and self.backend_class.logprobs else None

    @property
    def samples(self) -> int:
        return self.options.judge.samples

    @property
    def template_hash(self) -> str:
        return canonical_hash(
            {
                "template": template_hash(VERDICT_TEMPLATE, REFERENCE_TEMPLATE),
                "structured": self.structured,
                "examples": self.examples,
                "samples": self.samples,
                "logprobs": self.top_logprobs,
            }
        )[:16]

    def settings_hash(self) -> str:
        """The judging model's fingerprint (spec, base_url, options) and the judge's max tokens."""
        return canonical_hash(
            {"backend": self.backends(self.arg, self.options).fingerprint(), "max_tokens": self.max_tokens}
        )[:16]

    @property
    def max_tokens(self) -> int:
        return self.options.judge.max_tokens

    def check(self) -> None:
        self.backends(self.arg, self.options).check()

    def prompt_for(self, item: JudgeItem) -> str:
        if item.reference:
            return render(
                REFERENCE_TEMPLATE,
                question=item.prompt,
                response=item.response,
                reference=item.reference,
                expected_facts=item.expected_facts,
                examples=self.examples,
                structured=self.structured,
            )
        return render(
            VERDICT_TEMPLATE,
            question=item.prompt,
            response=item.response,
            examples=self.examples,
            structured=self.structured,
        )

    def params_for(self, item: JudgeItem) -> SamplingParams:
        temperature = self.options.judge.temperature if self.samples > 1 else 0.0
        return SamplingParams(
            temperature=temperature,
            max_tokens=self.max_tokens,
            seed=0,
            json_schema=judgment_schema(bool(item.reference)) if self.structured else None,
            top_logprobs=self.top_logprobs,
        )

    def judge(self, items: Sequence[JudgeItem], on_judgment: OnJudgment) -> None:
        pending: dict[str, tuple[JudgeItem, int]] = {}
        requests = []
        for item in items:
            for sample in range(self.samples):
                req = Request(
                    model=self.arg,
                    prompt_id=item.response_key,
                    text=self.prompt_for(item),
                    params=self.params_for(item),
                    sample=sample,
                )
                pending[req.key] = (item, sample)
                requests.append(req)
        if self.backend is None:  # one backend for every call until close() (a run judges chunk by chunk)
            self.backend = self.backends(self.arg, self.options)
        thash = self.template_hash
        got: dict[str, list[Judgment | None]] = {}

        def on_response(resp: Response) -> None:
            item, _ = pending[resp.key]
            j = None
            if resp.error:
                self.errors += 1
                log.warning("judge %s failed on %s: %s", self.id, item.response_key[:12], resp.error)
            else:
                # a judge model whose untagged reasoning the splitter took off keeps its verdict there
                output = (
                    resp.text
                    if _TEXT_VERDICT.search(resp.text or "") or _JSON_VERDICT.search(resp.text or "")
                    else "\n\n".join(x for x in (resp.reasoning, resp.text) if x)
                )
                j = judgment_from_output(
                    item, output, self.id, thash, with_reference=bool(item.reference), logprobs=resp.logprobs
                )
            mine = got.setdefault(item.response_key, [])
            mine.append(j)
            done = [x for x in mine if x is not None]
            if len(mine) == self.samples and done:  # every sample failed: no judgment, retried next run
                on_judgment(done[0] if self.samples == 1 else combine_samples(done))

        self.backend.generate(requests, on_response)

    def close(self) -> None:
        """Free the judging model (a local one's memory, a cluster's replicas)."""
        if self.backend is not None:
            backend, self.backend = self.backend, None
            backend.close()


@hookimpl
def register_judges(register: Callable[..., Any]) -> None:
    register(LLMJudge)
