"""The toy model's prompt sets, registered like any plugin's: its held-out phrasings and a sample of
its training phrasings. The toy's modules load when a set is asked for, not when plugins load."""

from __future__ import annotations

from collections.abc import Callable

from deccp_eval.base.hookspecs import hookimpl
from deccp_eval.datasets.loading import Dataset

HELDOUT = "deccp-toy-heldout"  # toy.data.HELDOUT_SOURCE
TRAIN = "deccp-toy-train"  # toy.data.TRAIN_SOURCE


def toy_heldout() -> Dataset:
    """The toy model's held-out phrasings (never trained on), EN and ZH paired, with expected facts."""
    from deccp_eval.toy.data import HELDOUT_SOURCE, heldout_prompts
    from deccp_eval.toy.model import TOY_VERSION

    return Dataset(name=HELDOUT_SOURCE, version=f"toy-v{TOY_VERSION}", prompts=heldout_prompts())


def toy_train() -> Dataset:
    """A sample of the phrasings the toy was trained on (every 2nd shape of sensitive topics, every 10th of
    benign ones): what a preference set for the toy is built from, apart from the held-out phrasings."""
    from deccp_eval.toy.data import TRAIN_SOURCE, phrasing_prompts
    from deccp_eval.toy.model import TOY_VERSION

    return Dataset(
        name=TRAIN_SOURCE,
        version=f"toy-v{TOY_VERSION}",
        prompts=phrasing_prompts(heldout=False, every_sensitive=2, every_benign=10),
    )


@hookimpl
def register_datasets(register: Callable[..., None]) -> None:
    register(HELDOUT, toy_heldout)
    register(TRAIN, toy_train)
