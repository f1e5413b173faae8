"""`hf:PATH_OR_HUB_ID`: local HF transformers generation, left-padded batches, the model's chat template."""

from __future__ import annotations

from collections.abc import Callable

from deccp_eval.backends.local_weights import LocalHFBackend
from deccp_eval.base.hookspecs import hookimpl


class HFBackend(LocalHFBackend):
    name = "hf"
    description = "local transformers model (path or hub id); batched, chat template, auto device/dtype"


@hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register(HFBackend)
