"""Flags that say how local weights load, shared by `run` (hf:, abliterated:) and `abliterate`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def local_load_options() -> list[Callable[..., Any]]:
    """Flags that say how local weights load (hf:, abliterated:, abliterate): big models, revisions, remote code."""
    return [
        click.option(
            "--device-map",
            default=None,
            help="Local backends: accelerate placement over GPUs, CPU and "
            "disk (auto, balanced, sequential) for models bigger than one device.",
        ),
        click.option(
            "--max-memory",
            default=None,
            metavar="DEV=SIZE,...",
            help="With --device-map: memory per device, e.g. 0=70GiB,1=70GiB,cpu=200GiB.",
        ),
        click.option("--offload-folder", default=None, help="With --device-map: folder for weights offloaded to disk."),
        click.option("--revision", default=None, help="Local backends: hub branch, tag or commit of the weights."),
        click.option(
            "--gguf-file",
            default=None,
            help="Local backends: which .gguf file of a folder that holds several (a .gguf path works alone).",
        ),
        click.option(
            "--trust-remote-code",
            is_flag=True,
            help="Local backends: run the repository's own modelling code (read it first).",
        ),
    ]


def load_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    """The local-loading flags as BackendOptions / LoadOptions fields."""
    from deccp_eval.backends.torch_utils import parse_max_memory

    return {
        "device_map": kw.get("device_map"),
        "max_memory": parse_max_memory(kw.get("max_memory")),
        "offload_folder": kw.get("offload_folder"),
        "revision": kw.get("revision"),
        "gguf_file": kw.get("gguf_file"),
        "trust_remote_code": bool(kw.get("trust_remote_code")),
    }
