"""Device and dtype choice shared by every torch-based path (HF backend, abliteration)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from deccp_eval.base.errors import MissingDependency, UsageError


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def input_device(model: Any) -> Any:
    """Where input ids go: the embeddings' device (the CPU when accelerate keeps them on disk)."""
    device = model.get_input_embeddings().weight.device
    return "cpu" if device.type == "meta" else device


def pick_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        if device == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return getattr(torch, dtype)
    except AttributeError:
        raise UsageError(f"unknown dtype {dtype!r} (use auto, float32, bfloat16 or float16)") from None


class LoadOptions(BaseModel):
    """How local weights are loaded (hf:, abliterated:, abliterate): device or accelerate placement, dtype,
    the hub revision, and whether a repository's own modelling code may run."""

    model_config = ConfigDict(extra="forbid")

    device: str = "auto"
    dtype: str = "auto"
    device_map: str | dict[str, Any] | None = Field(
        default=None, description="accelerate placement: auto, balanced, sequential, or {module: device}"
    )
    max_memory: dict[str, str] | None = Field(
        default=None, description='per device, e.g. {"0": "20GiB", "cpu": "60GiB"}'
    )
    offload_folder: str | None = Field(default=None, description="where weights that fit nowhere go (disk offload)")
    revision: str | None = None
    trust_remote_code: bool = False
    gguf_file: str | None = Field(default=None, description="which .gguf in a folder that holds several")


class WithLoadOptions(BaseModel):
    """Settings that load local weights (BackendOptions, AbliterateSettings) hold one `load: LoadOptions`.
    Its fields may also be given flat (`device=...`, `revision=...`), as flags, models files and
    callers do, and `model_copy(update=...)` reads an update the same way (validated, not set raw)."""

    load: LoadOptions = Field(default_factory=LoadOptions, description="how local weights are loaded")

    @model_validator(mode="before")
    @classmethod
    def _flat_load_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not any(k in LoadOptions.model_fields for k in data):
            return data
        data = dict(data)
        load = data.get("load") or {}
        load = load.model_dump() if isinstance(load, LoadOptions) else dict(load)
        load.update({k: data.pop(k) for k in list(data) if k in LoadOptions.model_fields})
        data["load"] = load
        return data

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        if not update:
            return super().model_copy(deep=deep)
        return self.model_validate({**self.model_dump(), **update})


def gguf_source(path: str, gguf_file: str | None = None) -> tuple[str, str] | None:
    """(folder, file name) when `path` is a GGUF file or a folder holding one (`gguf_file` picks among
    several); None for a normal model folder or a hub id. transformers reads a GGUF's tokenizer, chat
    template and config from the file and dequantizes its weights."""
    from pathlib import Path

    p = Path(path).expanduser()
    if p.is_file() and p.suffix.lower() == ".gguf":
        return str(p.parent), p.name
    if not p.is_dir():
        if gguf_file:
            return path, gguf_file  # a hub id with a named GGUF file
        return None
    if gguf_file:
        if not (p / gguf_file).is_file():
            raise UsageError(f"{p} holds no {gguf_file}")
        return str(p), gguf_file
    if (p / "config.json").is_file():
        return None
    found = sorted(f.name for f in p.glob("*.gguf"))
    if len(found) > 1:
        raise UsageError(f"{p} holds several GGUF files ({', '.join(found)}): pick one with --gguf-file")
    return (str(p), found[0]) if found else None


def gguf_chat_template(path: str) -> str | None:
    """The file's own `tokenizer.chat_template`. transformers does not always carry it over (a GGUF
    beside tokenizer files, as `--export-gguf` writes it, got none), and without it every prompt
    would go to the model unformatted."""
    from gguf import GGUFReader

    field = GGUFReader(path).fields.get("tokenizer.chat_template")
    return str(field.contents()) if field is not None else None


def dequantized(model: Any) -> Any:
    """A model loaded from GGUF is already dequantized in memory, but transformers keeps its GGUF
    quantizer and refuses `save_pretrained`; dropping it makes it a plain model."""
    if getattr(model, "hf_quantizer", None) is not None and type(model.hf_quantizer).__name__.startswith("Gguf"):
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return model


def parse_max_memory(text: str | None) -> dict[str, str] | None:
    """`0=20GiB,cpu=60GiB` -> {"0": "20GiB", "cpu": "60GiB"} (the --max-memory flag)."""
    if not text:
        return None
    out: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"--max-memory {text!r}: expected DEVICE=SIZE pairs, e.g. 0=20GiB,cpu=60GiB")
        out[key.strip()] = value.strip()
    return out


def _accelerate_max_memory(max_memory: dict[str, str]) -> dict[Any, str]:
    """accelerate wants GPU indices as ints ("0" -> 0); cpu, disk and mps stay strings."""
    return {int(k) if k.isdigit() else k: v for k, v in max_memory.items()}


def _remote_code_error(path: str, exc: Exception) -> Exception:
    return UsageError(
        f"{path} ships its own modelling code, which runs only with --trust-remote-code "
        "(backend option trust_remote_code=true): read that code first, it executes on this machine"
    )


def load_model(
    path: str, device: str = "auto", dtype: str = "auto", *, options: LoadOptions | None = None
) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode, tokenizer left-padded for batching. `path` may be a GGUF
    file or a folder holding one (`gguf_source`): dequantized to `dtype`, a plain model after.

    With `device_map` (and optionally `max_memory` / `offload_folder`) accelerate spreads the
    layers over GPUs, the CPU and disk, so a model bigger than one GPU still loads; without it
    the whole model goes to one device.
    """
    try:
        import torch  # noqa: F401
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise MissingDependency("transformers", "hf", "The hf backend") from None
    opts = options or LoadOptions(device=device, dtype=dtype)
    dev = pick_device(opts.device)
    common: dict[str, Any] = {"revision": opts.revision, "trust_remote_code": opts.trust_remote_code}
    kwargs: dict[str, Any] = {**common, "dtype": pick_dtype(opts.dtype, dev)}
    if opts.device_map is not None:
        _require_accelerate()
        kwargs["device_map"] = opts.device_map
        if opts.max_memory:
            kwargs["max_memory"] = _accelerate_max_memory(opts.max_memory)
        if opts.offload_folder:
            kwargs["offload_folder"] = opts.offload_folder
    elif opts.max_memory or opts.offload_folder:
        raise UsageError("--max-memory and --offload-folder need --device-map (e.g. --device-map auto)")
    gguf = gguf_source(path, opts.gguf_file)
    if gguf is not None:
        _require_gguf()
        plain = plain_gguf_copy(gguf[0], gguf[1], kwargs["dtype"])
        if plain is not None:
            path, gguf = str(plain), None
        else:
            path = gguf[0]
            common["gguf_file"] = kwargs["gguf_file"] = gguf[1]
    try:
        with gguf_parsed_once() if gguf is not None else contextlib.nullcontext():
            config = AutoConfig.from_pretrained(path, **common)  # first: it names a need for remote code
            tokenizer = AutoTokenizer.from_pretrained(path, **common)
            model = dequantized(AutoModelForCausalLM.from_pretrained(path, config=config, **kwargs))
            if gguf is not None and getattr(tokenizer, "chat_template", None) is None:
                tokenizer.chat_template = gguf_chat_template(f"{path}/{gguf[1]}")
    except ValueError as exc:
        if "trust_remote_code" in str(exc) and not opts.trust_remote_code:
            raise _remote_code_error(path, exc) from None
        raise
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if opts.device_map is None:
        model.to(dev)
    model.eval()
    return model, tokenizer


GGUF_CACHE_SOURCE = "gguf-source.json"


def gguf_cache_root() -> Any:
    """Where dequantized copies of GGUF files live: DECCP_EVAL_CACHE (default ~/.cache/deccp-eval)/gguf/."""
    import os
    from pathlib import Path

    from platformdirs import user_cache_dir

    return Path(os.environ.get("DECCP_EVAL_CACHE", user_cache_dir("deccp-eval"))) / "gguf"


def plain_gguf_copy(folder: str, name: str, dtype: Any) -> Any:
    """A normal safetensors folder (config, tokenizer with the chat template, weights dequantized to
    `dtype`) made once from a local GGUF file and reused: reading a GGUF through transformers parses
    its metadata in pure Python three times and dequantizes every tensor in numpy (about 30 s of CPU
    for the 135M SmolLM2, minutes for a 7B model), a safetensors folder loads in a second or two.
    Keyed by the file's full content digest, the dtype and the transformers version (its GGUF mapping
    makes the copy), so a changed file or a new mapping makes a new copy; the first load and every
    later one read the same folder, so they answer alike. Costs the dequantized size on disk
    (4 bytes a parameter in float32); DECCP_EVAL_GGUF_CACHE=0 reads the GGUF every time instead.
    None (read the GGUF directly) when off, for a GGUF on the hub, or when the cache is not writable."""
    import json
    import logging
    import os
    import shutil
    from pathlib import Path

    if os.environ.get("DECCP_EVAL_GGUF_CACHE", "").strip().lower() in ("0", "false", "no", "off"):
        return None
    src = Path(folder).expanduser() / name
    if not src.is_file():
        return None
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from deccp_eval.backends.fingerprint import content_digest

    digest = content_digest(src)
    dtype_name = str(dtype).removeprefix("torch.")
    key = f"{digest[:32]}-{dtype_name}-transformers{transformers.__version__}"
    out = gguf_cache_root() / key
    if (out / GGUF_CACHE_SOURCE).is_file():  # written last, inside the folder renamed into place
        return out
    tmp = out.with_name(f".{key}.{os.getpid()}.tmp")
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        logging.getLogger("deccp_eval").info("dequantizing %s to %s once, into %s", src.name, dtype_name, out)
        with gguf_parsed_once():
            config = AutoConfig.from_pretrained(str(src.parent), gguf_file=name)
            tokenizer = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=name)
            model = dequantized(
                AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=name, config=config, dtype=dtype)
            )
            if getattr(tokenizer, "chat_template", None) is None:
                tokenizer.chat_template = gguf_chat_template(str(src))
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / GGUF_CACHE_SOURCE).write_text(
            json.dumps(
                {"gguf": str(src), "digest": digest, "dtype": dtype_name, "transformers": transformers.__version__},
                indent=1,
            ),
            encoding="utf-8",
        )
        del model
        try:
            os.rename(tmp, out)
        except OSError:  # another process put its copy there first: same content
            if not (out / GGUF_CACHE_SOURCE).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        logging.getLogger("deccp_eval").warning(
            "could not cache a dequantized copy of %s (%s); reading the GGUF directly", src.name, exc
        )
        return None
    return out


def gguf_parsed_once() -> Any:
    """A scope with one parse of each GGUF file and one tensor-name map per architecture: transformers
    parses the metadata again for the config, the tokenizer, the weights (and the chat template
    check), about 6 s of CPU each for a 49k-token vocabulary, and rebuilds gguf's name map for every
    submodule of the model (about 400 times for SmolLM2, 10-20 s). Both are read-only; the scope
    swaps `gguf.GGUFReader` and `gguf.get_tensor_name_map`, which transformers imports at each call."""
    import functools

    import gguf as gguf_module

    gguf: Any = gguf_module  # its names are swapped for the scope

    @contextlib.contextmanager
    def scope() -> Any:
        real_reader, real_map = gguf.GGUFReader, gguf.get_tensor_name_map
        readers: dict[tuple[str, Any], Any] = {}

        def reader(path: Any, mode: Any = "r") -> Any:
            key = (str(path), mode)
            if key not in readers:
                readers[key] = real_reader(path, mode)
            return readers[key]

        gguf.GGUFReader, gguf.get_tensor_name_map = reader, functools.lru_cache(maxsize=None)(real_map)
        try:
            yield
        finally:
            gguf.GGUFReader, gguf.get_tensor_name_map = real_reader, real_map

    return scope()


def _require_gguf() -> None:
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise MissingDependency("gguf", "hf", "Loading a .gguf file") from None


def _require_accelerate() -> None:
    try:
        import accelerate  # noqa: F401
    except ImportError:
        raise MissingDependency("accelerate", "hf", "--device-map") from None
