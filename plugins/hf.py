"""`hf:PATH_OR_HUB_ID`: local HF transformers generation, left-padded batches, the model's chat template."""

from __future__ import annotations

from typing import Callable

from deccp_eval.hookspecs import hookimpl
from deccp_eval.local import LocalHFBackend


class HFBackend(LocalHFBackend):
    name = "hf"
    description = "local transformers model (path or hub id); batched, chat template, auto device/dtype"


@hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register(HFBackend)
