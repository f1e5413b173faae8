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

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from deccp_eval.backends.contract import BackendOptions, LoadOptions, backend_class, parse_options
from deccp_eval.base.errors import UsageError, validation_problems
from deccp_eval.base.files import parse_json, read_text


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


def _parse(path: Path, text: str) -> Any:
    """YAML, TOML or JSON; a syntax error names the file, line and column."""
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:  # its message ends "(at line L, column C)"
            raise UsageError(f"{path}: invalid TOML: {exc}") from None
    if suffix == ".json":
        return parse_json(text, path)
    import yaml

    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{path}: {where}invalid YAML ({problem})") from None
    except RecursionError:
        raise UsageError(f"{path}: YAML nested too deeply") from None


def load(path: Path) -> dict[str, ModelEntry]:
    data = _parse(path, read_text(path))
    if isinstance(data, dict) and "models" in data:
        unknown = sorted(str(k) for k in data if k != "models")
        if unknown:
            raise UsageError(f"{path}: unknown top-level key(s) {', '.join(unknown)} (only `models` is read)")
        data = data["models"]
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{path}: expected a mapping `models: {{NAME: {{backend, model, ...}}}}`")
    entries = data
    out: dict[str, ModelEntry] = {}
    for name, raw in entries.items():
        name = str(name)
        try:
            out[name] = ModelEntry.model_validate(raw)
        except ValidationError as exc:
            raise UsageError(f"{path}: model {name!r}: {validation_problems(exc)}") from None
    return out


def resolve(
    specs: list[str], base: BackendOptions, path: Path | None
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
            update = {
                k: v
                for k, v in {
                    "base_url": e.base_url,
                    "api_key_env": e.api_key_env,
                    "prices": e.prices,
                    "batch": e.batch,
                }.items()
                if v is not None
            }
            own = {*BackendOptions.model_fields, *LoadOptions.model_fields}  # loading fields may be given flat
            update.update({k: v for k, v in e.options.items() if k in own})
            extra = {k: v for k, v in e.options.items() if k not in own}
            parse_options(backend_class(full), f"{path}: model {spec!r} ({full})", extra, strict=True)
            try:  # validated like the constructor: flat loading fields into `load`, judge keys into `judge`
                options[full] = base.model_copy(update={**update, "extra": {**base.extra, **extra}})
            except ValidationError as exc:
                raise UsageError(f"{path}: model {spec!r}: {validation_problems(exc)}") from None
            params[full] = e.params
        else:
            full = spec
            options[full] = base
        parse_options(backend_class(full), full, options[full].extra)  # a typo fails before any work
        if full in out_specs:
            raise UsageError(f"model {full!r} given twice")
        out_specs.append(full)
    return out_specs, options, params
