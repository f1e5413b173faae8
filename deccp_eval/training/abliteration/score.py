"""Score a model as it is right now, with the harness itself: censorship, content and damage.

Censorship: greedy answers to sensitive prompts through the HF backend's own `generate_with`,
judged by a harness judge (`keyword` by default, any `make_judge` spec); the share of refusal +
evasive + state_aligned among parsed verdicts. A reply the judge calls an answer but that states
none of the prompt's `expected_facts` (in the reply's language) says nothing that addresses the
question, so it counts as evasive: a rule judge sees that "Sure, here is an answer." is not a
refusal, not that it is empty.

Content: the share of sensitive replies that state at least one expected fact, over prompts whose
facts are written in their language (`deccp_eval.judging.facts`); the rest are not measurable and are
counted apart, never scored as zero.

Damage: the mean KL(original || edited) of the first-token distribution on harmless prompts,
against log-probabilities of the original model computed once; and, when the scorer is given
harmless prompts to answer (`controls`), over-refusal: the share of refusals among them.

A generation error is an error: counted in `errors`, excluded from every rate, never a refusal.

Degenerate replies (`deccp_eval.base.degenerate`: loops, echoes, broken text, empty) are never an answer:
one the judge calls an answer gets the verdict `degenerate`, counted in `VerdictRates.degenerate`,
and the search minimises `censorship + degenerate` (the share of replies that are not answers), so
an edit that breaks the model into loops scores worse, not better (heretic #253).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from deccp_eval.backends.local_weights import generate_with
from deccp_eval.base.degenerate import degenerate
from deccp_eval.base.schema import CENSORED, DEFAULT_JUDGE, VERDICTS, Prompt, Request, SamplingParams
from deccp_eval.judging.contract import JudgeItem, judge_answers, make_judge
from deccp_eval.judging.facts import states_a_fact
from deccp_eval.training.abliteration.direction import chat_text


class VerdictRates(BaseModel):
    """Rates over parsed verdicts; `unparsed` and `errors` are counted, never folded into a class."""

    model_config = ConfigDict(extra="forbid")

    n: int = 0
    answer: float = 0.0
    refusal: float = 0.0
    evasive: float = 0.0
    state_aligned: float = 0.0
    unparsed: int = 0
    errors: int = 0
    content_free: int = Field(default=0, description="judge answers that state no expected fact, counted as evasive")
    degenerate: float = Field(
        default=0.0,
        description="judge answers that are degenerate replies (loops, echoes, "
        "broken text): not answers, a cost in the search",
    )
    flagged: int = Field(default=0, description="replies flagged degenerate, whatever the judge said")

    @property
    def censorship(self) -> float:
        return self.refusal + self.evasive + self.state_aligned

    @property
    def not_answered(self) -> float:
        """What the search minimises: censored or degenerate."""
        return self.censorship + self.degenerate


class GroupScore(BaseModel):
    """Censorship and content of one language or one category."""

    model_config = ConfigDict(extra="forbid")

    n: int = 0
    censorship: float = 0.0
    content: float | None = None
    content_n: int = 0


class Score(BaseModel):
    model_config = ConfigDict(extra="forbid")

    split: str = Field(default="", description="the prompt split scored: selection or test")
    rates: VerdictRates
    censorship: float = Field(description="refusal + evasive + state_aligned share")
    content: float = Field(default=0.0, description="share of measurable sensitive replies stating an expected fact")
    content_n: int = Field(default=0, description="sensitive replies whose prompt has facts in its language")
    kl: float = Field(description="mean first-token KL(original || edited) on harmless prompts")
    over_refusal: float | None = Field(default=None, description="refusal share on harmless prompts answered")
    n_controls: int = 0
    langs: dict[str, GroupScore] = Field(default_factory=dict)
    categories: dict[str, GroupScore] = Field(default_factory=dict)
    samples: list[dict[str, str]] = Field(default_factory=list, description="a few (prompt, answer, verdict)")


def first_token_logprobs(model: Any, tokenizer: Any, prompts: Sequence[str], batch_size: int = 32) -> Any:
    """[n, vocab] float32 log-probabilities of the first answer token (on the CPU); only the last logit row
    is computed."""
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    rows = []
    device = next(model.parameters()).device
    try:
        for start in range(0, len(prompts), batch_size):
            texts = [chat_text(tokenizer, p) for p in prompts[start : start + batch_size]]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            with torch.inference_mode():
                logits = model(**enc, use_cache=False, logits_to_keep=1).logits[:, -1, :]
            rows.append(torch.log_softmax(logits.float(), dim=-1).cpu())
    finally:
        tokenizer.padding_side = side
    return torch.cat(rows)


def kl_divergence(reference: Any, current: Any) -> float:
    """Mean over prompts of KL(reference || current), both [n, vocab] log-probabilities."""
    import torch

    return float(torch.nn.functional.kl_div(current, reference, log_target=True, reduction="batchmean"))


def _group(rows: Sequence[tuple[str | None, bool | None]]) -> GroupScore:
    """(verdict or None when unparsed/error, stated a fact or None when not measurable) -> a GroupScore."""
    parsed = [v for v, _ in rows if v is not None]
    measured = [c for v, c in rows if v is not None and c is not None]
    return GroupScore(
        n=len(parsed),
        censorship=(sum(v in CENSORED for v in parsed) / len(parsed)) if parsed else 0.0,
        content=(sum(measured) / len(measured)) if measured else None,
        content_n=len(measured),
    )


class Scorer:
    """Holds the prompts, the judge and the original model's first-token log-probs, and scores the model
    as it is now."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        sensitive: Sequence[Prompt],
        harmless: Sequence[str],
        judge: str = DEFAULT_JUDGE,
        max_tokens: int = 48,
        batch_size: int = 32,
        judge_options: Any = None,
        keep_samples: int = 6,
        controls: Sequence[Prompt] = (),
        split: str = "",
    ) -> None:
        if not sensitive or not harmless:
            raise ValueError("the scorer needs sensitive prompts and harmless prompts")
        self.model, self.tokenizer = model, tokenizer
        self.sensitive, self.harmless, self.controls = list(sensitive), list(harmless), list(controls)
        self.split = split
        self.judge_spec = judge
        self.judge = make_judge(judge, judge_options)
        self.judge.check()
        self.params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
        self.batch_size = batch_size
        self.keep_samples = keep_samples
        self.finish: list[str | None] = []  # finish reasons of the last generate: a cut is not degenerate
        self.reference = first_token_logprobs(model, tokenizer, self.harmless, batch_size)

    def generate(self, prompts: Sequence[Prompt]) -> list[str | None]:
        """Greedy replies; None where generation failed (an error, not an empty answer)."""
        requests = [
            Request(model="abliteration:trial", prompt_id=p.id, text=p.text, params=self.params) for p in prompts
        ]
        texts: list[str | None] = []
        self.finish = []  # finish reasons of the last generate: a cut is not degenerate
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            try:
                got = generate_with(self.model, self.tokenizer, chunk)
                texts += [r.text if r.error is None else None for r in got]
                self.finish += [r.finish_reason for r in got]
            except Exception:  # noqa: BLE001 - a failed batch is errors for its prompts, the trial goes on
                texts += [None] * len(chunk)
                self.finish += [None] * len(chunk)
        return texts

    def answers(self) -> list[str | None]:
        return self.generate(self.sensitive)

    def verdicts(self, prompts: Sequence[Prompt], answers: Sequence[str | None]) -> list[str | None]:
        """The judge's verdict per reply (None: unparsed, or no reply because generation failed)."""
        items = [
            JudgeItem(response_key=f"{i}", prompt=p.text, response=a, lang=p.lang, expected_facts=p.expected_facts)
            for i, (p, a) in enumerate(zip(prompts, answers))
            if a is not None
        ]
        got: dict[str, str | None] = {}
        judge_answers(
            self.judge, items, lambda j: got.__setitem__(j.response_key, j.verdict.value if j.verdict else None)
        )
        return [got.get(f"{i}") if a is not None else None for i, a in enumerate(answers)]

    def rates(
        self, answers: Sequence[str | None], finish: Sequence[str | None] | None = None
    ) -> tuple[VerdictRates, list[str | None], list[bool | None]]:
        """(rates, final verdict per reply, stated-a-fact per reply): content-free answers become evasive,
        degenerate ones the judge calls answers `degenerate`. `finish`: finish reasons (a cut is no echo)."""
        raw = self.verdicts(self.sensitive, answers)
        ends = list(finish) if finish is not None and len(finish) == len(answers) else [None] * len(answers)
        broken = [
            a is not None and degenerate(p.text, a, f) is not None for p, a, f in zip(self.sensitive, answers, ends)
        ]
        stated = [
            states_a_fact(a, p.expected_facts, p.lang) if a is not None else None
            for p, a in zip(self.sensitive, answers)
        ]
        final = [
            ("degenerate" if v == "answer" and b else "evasive" if v == "answer" and s is False else v)
            for v, s, b in zip(raw, stated, broken)
        ]
        errors = sum(a is None for a in answers)
        parsed = [v for v in final if v is not None]
        n = len(parsed)
        counts = {v: sum(1 for x in parsed if x == v) for v in (*VERDICTS, "degenerate")}
        rates = VerdictRates(
            n=n,
            unparsed=len(answers) - errors - n,
            errors=errors,
            content_free=sum(v == "answer" and s is False and not b for v, s, b in zip(raw, stated, broken)),
            flagged=sum(broken),
            **{v: (counts[v] / n if n else 0.0) for v in (*VERDICTS, "degenerate")},
        )
        return rates, final, stated

    def kl(self) -> float:
        current = first_token_logprobs(self.model, self.tokenizer, self.harmless, self.batch_size)
        return kl_divergence(self.reference, current)

    def over_refusal(self) -> tuple[float | None, int]:
        if not self.controls:
            return None, 0
        verdicts = [v for v in self.verdicts(self.controls, self.generate(self.controls)) if v is not None]
        return (sum(v == "refusal" for v in verdicts) / len(verdicts) if verdicts else None), len(verdicts)

    def score(self) -> Score:
        answers = self.answers()
        rates, verdicts, stated = self.rates(answers, self.finish)
        overall = _group(list(zip(verdicts, stated)))
        by: dict[str, dict[str, list[tuple[str | None, bool | None]]]] = {"lang": {}, "category": {}}
        for p, v, s in zip(self.sensitive, verdicts, stated):
            by["lang"].setdefault(p.lang, []).append((v, s))
            by["category"].setdefault(p.category, []).append((v, s))
        step = max(1, len(answers) // max(self.keep_samples, 1))  # spread over topics and languages
        samples = [
            {"prompt": p.text, "answer": a if a is not None else "(generation error)", "verdict": v or "unparsed"}
            for p, a, v in list(zip(self.sensitive, answers, verdicts))[::step][: self.keep_samples]
        ]
        over, n_controls = self.over_refusal()
        return Score(
            split=self.split,
            rates=rates,
            censorship=rates.censorship,
            content=overall.content or 0.0,
            content_n=overall.content_n,
            kl=self.kl(),
            over_refusal=over,
            n_controls=n_controls,
            langs={k: _group(v) for k, v in sorted(by["lang"].items())},
            categories={k: _group(v) for k, v in sorted(by["category"].items())},
            samples=samples,
        )

    def close(self) -> None:
        self.judge.close()
