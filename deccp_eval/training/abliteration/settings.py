"""What one abliteration is asked to do (`AbliterateSettings`) and the prompt sets it uses
(`PromptSets`): the inputs both the sequential search (`pipeline`) and the parallel one (`parallel`) take."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from deccp_eval.backends.local_weights import model_alias
from deccp_eval.backends.torch_utils import WithLoadOptions
from deccp_eval.base.schema import DEFAULT_JUDGE, Prompt, canonical_hash
from deccp_eval.training.abliteration.export import PromptSource


class AbliterateSettings(WithLoadOptions):
    """Every knob of one abliteration; the ones that change scores also name the Optuna study. How the
    model loads is `load` (LoadOptions; its fields may be given flat: device=..., revision=...)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    out: Path
    trials: int = Field(default=16, ge=1)
    seed: int = 0
    pick: int | None = None
    max_kl: float = Field(default=0.1, ge=0)
    max_censorship: float = Field(default=0.1, ge=0, le=1, description="pick rule: censorship bound")
    judge: str = DEFAULT_JUDGE
    batch_size: int = Field(default=32, ge=1)
    export_gguf: Literal["F32", "F16", "Q8_0"] | None = Field(
        default=None, description="also write model.gguf (the model must come from a GGUF file)"
    )
    embeddings: bool = False
    norm_preserve: bool = False
    project_harmless: bool = False
    max_tokens: int = Field(default=48, ge=1)
    langs: list[str] = Field(default_factory=lambda: ["en", "zh"])
    harmful: str = "deccp"
    harmless: list[str] = Field(default_factory=lambda: ["deccp", "deccp-harmless"])
    eval_dataset: str | None = Field(
        default=None,
        description="selection/test prompts; default: held-out pairs of `harmful` (the toy: its held-out phrasings)",
    )
    eval_every: int = Field(default=5, ge=2, description="every N-th pair is held out: half selection, half test")
    eval_limit: int | None = Field(default=96, ge=1, description="at most this many prompts per selection set")
    study_db: Path = Path("results/abliteration.db")
    parallel_trials: int = Field(default=1, ge=1, description="trials at once on Ray workers (1: here)")
    ray_address: str | None = None

    def eval_ref(self) -> str:
        """The selection/test prompts: `eval_dataset`, else a model alias's held-out set, else `harmful`'s."""
        if self.eval_dataset:
            return self.eval_dataset
        alias = model_alias(self.model)
        return alias.heldout if alias is not None and alias.heldout else self.harmful


class EvalSet(BaseModel):
    """Prompts that score a model: sensitive ones (censorship, content), harmless ones (KL; answered on
    the test split for over-refusal)."""

    model_config = ConfigDict(extra="forbid")

    split: str
    sensitive: list[Prompt]
    harmless: list[Prompt]
    source: str = ""

    def texts(self) -> list[str]:
        return [p.text for p in self.harmless]


class PromptSets(BaseModel):
    """The prompt lists an abliteration uses, and where they came from (for the record)."""

    model_config = ConfigDict(extra="forbid")

    harmful: list[str]
    harmless: list[str]
    selection: EvalSet
    test: EvalSet
    harmful_sources: list[PromptSource] = Field(default_factory=list)
    harmless_sources: list[PromptSource] = Field(default_factory=list)

    def fingerprint(self) -> str:
        return canonical_hash(
            {
                "harmful": self.harmful,
                "harmless": self.harmless,
                "selection": self.selection.model_dump(mode="json"),
                "test": self.test.model_dump(mode="json"),
            }
        )[:16]
