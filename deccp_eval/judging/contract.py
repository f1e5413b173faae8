"""The judge contract and judge specs (`keyword`, `llm:BACKEND:MODEL`, `panel:A,B,C`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from deccp_eval.backends.contract import BackendFactory, BackendOptions, make_backend
from deccp_eval.base import pluginmanager
from deccp_eval.base.errors import UsageError
from deccp_eval.base.reasoning import split_reasoning
from deccp_eval.base.schema import Judgment, Verdict, canonical_hash


class JudgeItem(BaseModel):
    """What a judge sees: the question, the answer, and (for reference-aware judges) the gold text.

    `response` is always the answer alone: reasoning that reached the text (tags, an orphan closing
    tag, leaked planning) is split off here, so no judge ever reads thoughts as the answer."""

    model_config = ConfigDict(extra="forbid")

    response_key: str
    prompt: str
    response: str
    lang: str = "en"
    reference: str | None = None
    expected_facts: list[str] = []
    reasoning: str | None = None
    cut: bool = False  # reasoning and no answer (max_tokens ran out while thinking)

    @model_validator(mode="before")
    @classmethod
    def _answer_only(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("response"), str):
            split = split_reasoning(data["response"], data.get("reasoning"))
            data = {
                **data,
                "response": split.answer,
                "reasoning": split.reasoning,
                "cut": bool(data.get("cut")) or split.cut,
            }
        return data


OnJudgment = Callable[[Judgment], None]


def collect_into(judgments: dict[str, Judgment]) -> OnJudgment:
    """An on_judgment that keeps each judgment in `judgments` by response key (composite judges)."""
    return lambda j: judgments.__setitem__(j.response_key, j)


class Judge(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    uses_reference: ClassVar[bool] = False

    def __init__(
        self, arg: str = "", options: BackendOptions | None = None, backends: BackendFactory | None = None
    ) -> None:
        self.arg = arg
        self.options = options or BackendOptions()
        # where a judge that needs a model gets its backend: here by default, or an executor's
        # (`--executor ray`); never part of a key, since a backend's fingerprint is the same anywhere
        self.backends: BackendFactory = backends or make_backend

    @property
    def id(self) -> str:
        return f"{self.name}:{self.arg}" if self.arg else self.name

    @property
    def template_hash(self) -> str:
        """Changes whenever what the judge would say changes (template text, marker lists)."""
        return ""

    def settings_hash(self) -> str:
        """Changes whenever a setting changes the judge's output (its model's fingerprint, base_url,
        max tokens...); part of every judgment key, so changed settings re-grade. "" for judges that
        have none (rules); a judge with `members` (a panel) combines its members' hashes."""
        members = getattr(self, "members", None)
        if members:
            return canonical_hash([m.settings_hash() for m in members])[:16]
        return ""

    def check(self) -> None:
        """Fail before any work when the judge cannot run."""

    @abstractmethod
    def judge(self, items: Sequence[JudgeItem], on_judgment: OnJudgment) -> None: ...

    def close(self) -> None:
        """Free what the judge holds (models, clients)."""


def judge_answers(judge: Judge, items: Sequence[JudgeItem], on_judgment: OnJudgment) -> None:
    """Judge `items` with `judge`, except replies that are reasoning with no answer: those are `evasive` by rule
    (the model never answered), the same for every judge and never sent to a paid one."""
    rest = []
    for item in items:
        if item.cut and not item.response.strip():
            on_judgment(
                Judgment(
                    response_key=item.response_key,
                    judge=judge.id,
                    template_hash=judge.template_hash,
                    verdict=Verdict.EVASIVE,
                    confidence=0.9,
                    decided_by="rule before judging",
                    rationale="evasive: reasoning only, no answer (cut before the answer began)",
                )
            )
        else:
            rest.append(item)
    if rest:
        judge.judge(rest, on_judgment)


def make_judge(spec: str, options: BackendOptions | None = None, backends: BackendFactory | None = None) -> Judge:
    """The judge a spec names; `backends` builds the models it judges with (default: in this process)."""
    name, _, arg = spec.partition(":")
    registered = pluginmanager.judges()
    if name not in registered:
        known = ", ".join(sorted(registered))
        raise UsageError(f"unknown judge {name!r} in {spec!r}; available: {known}")
    return registered[name].obj(arg, options, backends=backends)


def member_judges(
    kind: str,
    arg: str,
    options: BackendOptions | None,
    *,
    forbidden: tuple[str, ...],
    hint: str = "",
    backends: BackendFactory | None = None,
) -> list[Judge]:
    """The members of a composite judge (`panel:A,B`, `cascade:A,B`): at least two specs, none of a
    forbidden composite kind, each built by `make_judge` with the composite's `backends`."""
    specs = [s.strip() for s in arg.split(",") if s.strip()]
    if len(specs) < 2:
        raise UsageError(f"{kind}:{arg} needs at least two comma-separated judge specs{hint}")
    if any(s.startswith(tuple(f"{f}:" for f in forbidden)) for s in specs):
        raise UsageError(f"a {kind} member cannot be a {' or a '.join(forbidden)}")
    return [make_judge(s, options, backends) for s in specs]


class CompositeJudge(Judge):
    """A judge made of member judges (panel, cascade): it needs a reference when any member does,
    and checks and closes every member. Subclasses set `self.members` (from `member_judges`)."""

    members: list[Judge]

    @property
    def uses_reference(self) -> bool:  # type: ignore[override]
        return any(m.uses_reference for m in self.members)

    def check(self) -> None:
        for m in self.members:
            m.check()

    def close(self) -> None:
        for m in self.members:
            m.close()
