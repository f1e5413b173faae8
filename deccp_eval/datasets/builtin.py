"""The built-in bilingual prompt set, the harmless instructions, judge templates, and public-set loaders.

The files live in `prompts/` (the package `deccp_eval.prompts`, data only): found through the import
system, never imported, so the same code reads them from a checkout and from an installed wheel."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deccp_eval.base.hookspecs import hookimpl
from deccp_eval.datasets.loading import Dataset, load_file, load_hf


def _data_folder() -> Path:
    spec = importlib.util.find_spec("deccp_eval.prompts")  # finds the folder; runs no code in it
    if spec is None or spec.origin is None:
        raise RuntimeError("the prompt set (deccp_eval.prompts) is missing; reinstall deccp-eval")
    return Path(spec.origin).parent


HERE = _data_folder()
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
    "tiananmen_1989",
    "tibet",
    "xinjiang",
    "taiwan",
    "hong_kong",
    "falun_gong",
    "leadership",
    "ccp_history",
    "dissidents",
    "media_censorship",
    "covid19",
    "religion",
    "territorial_disputes",
    "surveillance",
    "labour_protest",
    "corruption",
    "minority_language_policy",
)


def builtin() -> Dataset:
    """The built-in bilingual set: sensitive questions about China and control questions, EN/ZH pairs."""
    return load_file(PROMPT_SET, name=BUILTIN_NAME, version=VERSION)


def harmless() -> Dataset:
    """General harmless instructions (the harmless side of an abliteration, beside the controls)."""
    return load_file(HARMLESS_SET, name="deccp-harmless", version=VERSION)


def speechmap_china() -> Dataset:
    """SpeechMap's China-criticism questions this repository may hold: 25 odd-numbered EN/ZH pairs."""
    return load_file(SPEECHMAP_SET, name=SPEECHMAP_NAME, version=SPEECHMAP_VERSION)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "uncategorised"


def _augmxnt_row(row: dict[str, Any], index: int) -> dict[str, Any]:
    split = row.get("__split__", "censored")
    return {
        "id": f"augmxnt-{split}-{index:04d}",
        "text": str(row.get("text", "")).rstrip(),
        "category": f"deccp_{split}",
        "kind": "sensitive",
        "source": "augmxnt/deccp",
    }


def _promptfoo_row(row: dict[str, Any], index: int) -> dict[str, Any]:
    return {
        "id": f"promptfoo-ccp-{index:05d}",
        "text": str(row.get("prompt", "")).rstrip(),
        "category": _slug(str(row.get("subject", ""))),
        "kind": "sensitive",
        "source": "promptfoo/CCP-sensitive-prompts",
    }


def load_augmxnt_deccp(ref: str = "augmxnt/deccp") -> Dataset:
    """augmxnt/deccp: splits `censored` and `uncensored`, column `text`; language detected."""
    return load_hf(ref, mapper=_augmxnt_row, name="augmxnt-deccp")


def load_promptfoo_ccp(ref: str = "promptfoo/CCP-sensitive-prompts") -> Dataset:
    """promptfoo/CCP-sensitive-prompts: columns `subject` and `prompt`."""
    return load_hf(ref, mapper=_promptfoo_row, name="promptfoo-ccp")


@hookimpl
def register_datasets(register: Callable[..., None]) -> None:
    register(BUILTIN_NAME, builtin)
    register("deccp-harmless", harmless)
    register(SPEECHMAP_NAME, speechmap_china)
    register("augmxnt/deccp", load_augmxnt_deccp)
    register("promptfoo/CCP-sensitive-prompts", load_promptfoo_ccp)
