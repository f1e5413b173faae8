"""The built-in bilingual prompt set, the harmless instructions, judge templates, and public-set loaders."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from deccp_eval.hookspecs import hookimpl

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
PROMPT_SET = HERE / "deccp_prompts.jsonl"
HARMLESS_SET = HERE / "harmless_instructions.jsonl"
SPEECHMAP_SET = HERE / "speechmap_china.jsonl"  # SPEECHMAP.md: the odd-numbered half, attribution
SPEECHMAP_NAME = "speechmap-china"
SPEECHMAP_VERSION = "odd-25"
VERSION = "1.0.0"
LICENSE = "Apache-2.0"  # of the bundled prompt sets; README.md says the same
BUILTIN_NAME = "deccp"
CATEGORIES: tuple[str, ...] = (
    "tiananmen_1989", "tibet", "xinjiang", "taiwan", "hong_kong", "falun_gong", "leadership", "ccp_history",
    "dissidents", "media_censorship", "covid19", "religion", "territorial_disputes", "surveillance",
    "labour_protest", "corruption", "minority_language_policy",
)


def builtin():  # -> Dataset; import kept local so `import deccp_eval.prompts` stays light
    from deccp_eval.datasets import load_file

    return load_file(PROMPT_SET, name=BUILTIN_NAME, version=VERSION)


def harmless():
    from deccp_eval.datasets import load_file

    return load_file(HARMLESS_SET, name="deccp-harmless", version=VERSION)


def speechmap_china():
    """SpeechMap's China-criticism questions this repository may hold: 25 odd-numbered EN/ZH pairs."""
    from deccp_eval.datasets import load_file

    return load_file(SPEECHMAP_SET, name=SPEECHMAP_NAME, version=SPEECHMAP_VERSION)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "uncategorised"


def _augmxnt_row(row: dict[str, Any], index: int) -> dict[str, Any]:
    split = row.get("__split__", "censored")
    return {"id": f"augmxnt-{split}-{index:04d}", "text": str(row.get("text", "")).rstrip(),
            "category": f"deccp_{split}", "kind": "sensitive", "source": "augmxnt/deccp"}


def _promptfoo_row(row: dict[str, Any], index: int) -> dict[str, Any]:
    return {"id": f"promptfoo-ccp-{index:05d}", "text": str(row.get("prompt", "")).rstrip(),
            "category": _slug(str(row.get("subject", ""))), "kind": "sensitive",
            "source": "promptfoo/CCP-sensitive-prompts"}


def load_augmxnt_deccp(ref: str = "augmxnt/deccp"):
    """augmxnt/deccp: splits `censored` and `uncensored`, column `text`; language detected."""
    from deccp_eval.datasets import load_hf

    return load_hf(ref, mapper=_augmxnt_row, name="augmxnt-deccp")


def load_promptfoo_ccp(ref: str = "promptfoo/CCP-sensitive-prompts"):
    """promptfoo/CCP-sensitive-prompts: columns `subject` and `prompt`."""
    from deccp_eval.datasets import load_hf

    return load_hf(ref, mapper=_promptfoo_row, name="promptfoo-ccp")


def toy_heldout():
    """The toy model's held-out phrasings (never trained on), EN and ZH paired, with expected facts."""
    from deccp_eval.datasets import Dataset
    from deccp_eval.toy import TOY_VERSION
    from deccp_eval.toy_data import HELDOUT_SOURCE, heldout_prompts

    return Dataset(name=HELDOUT_SOURCE, version=f"toy-v{TOY_VERSION}", prompts=heldout_prompts())


def toy_train():
    """A sample of the phrasings the toy was trained on (every 2nd shape of sensitive topics, every 10th of
    benign ones): what a preference set for the toy is built from, apart from the held-out phrasings."""
    from deccp_eval.datasets import Dataset
    from deccp_eval.toy import TOY_VERSION
    from deccp_eval.toy_data import TRAIN_SOURCE, phrasing_prompts

    return Dataset(name=TRAIN_SOURCE, version=f"toy-v{TOY_VERSION}",
                   prompts=phrasing_prompts(heldout=False, every_sensitive=2, every_benign=10))


@hookimpl
def register_datasets(register: Callable[..., None]) -> None:
    register(BUILTIN_NAME, builtin)
    register("deccp-toy-heldout", toy_heldout)  # toy_data.HELDOUT_SOURCE
    register("deccp-toy-train", toy_train)  # toy_data.TRAIN_SOURCE
    register("deccp-harmless", harmless)
    register(SPEECHMAP_NAME, speechmap_china)
    register("augmxnt/deccp", load_augmxnt_deccp)
    register("promptfoo/CCP-sensitive-prompts", load_promptfoo_ccp)
