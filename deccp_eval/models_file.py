"""Named models from a YAML or TOML file, so one backend serves many providers.

    models:
      deepseek:
        backend: openai
        model: deepseek-chat
        base_url: https://api.deepseek.com
        api_key_env: DEEPSEEK_API_KEY        # the variable's name, never the key
        prices: {input: 0.27, output: 1.10}  # USD per million tokens (batch_input/batch_output too)
        batch: true                          # through the provider's batch API (openai, anthropic)
        params: {max_tokens: 1024}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from deccp_eval.backend import BackendOptions, backend_class, parse_options, parse_spec
from deccp_eval.errors import UsageError


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    prices: dict[str, float] | None = None
    batch: bool | None = None
    params: dict[str, Any] = {}
    options: dict[str, Any] = {}


def load(path: Path) -> dict[str, ModelEntry]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        import tomllib

        data = tomllib.loads(text)
    elif path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text) or {}
    entries = data.get("models", data) if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise UsageError(f"{path}: expected a mapping `models: {{NAME: {{backend, model, ...}}}}`")
    out: dict[str, ModelEntry] = {}
    for name, raw in entries.items():
        try:
            out[name] = ModelEntry.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise UsageError(f"{path}: model {name!r}: {problems}") from None
    return out


def resolve(specs: list[str], base: BackendOptions, path: Path | None
            ) -> tuple[list[str], dict[str, BackendOptions], dict[str, dict[str, Any]]]:
    """Model names or specs -> (specs, options per spec, default sampling params per spec)."""
    entries = load(path) if path else {}
    out_specs: list[str] = []
    options: dict[str, BackendOptions] = {}
    params: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if spec in entries:
            e = entries[spec]
            full = f"{e.backend}:{e.model}"
            update = {k: v for k, v in {"base_url": e.base_url, "api_key_env": e.api_key_env,
                                        "prices": e.prices, "batch": e.batch}.items() if v is not None}
            update.update({k: v for k, v in e.options.items() if k in BackendOptions.model_fields})
            extra = {k: v for k, v in e.options.items() if k not in BackendOptions.model_fields}
            parse_options(backend_class(full), f"{path}: model {spec!r} ({full})", extra, strict=True)
            opts = base.model_copy(update=update)
            opts.extra = {**base.extra, **extra}
            options[full] = opts
            params[full] = e.params
        else:
            full = spec
            options[full] = base
        parse_options(backend_class(full), full, options[full].extra)  # a typo fails before any work
        if full in out_specs:
            raise UsageError(f"model {full!r} given twice")
        out_specs.append(full)
    return out_specs, options, params
