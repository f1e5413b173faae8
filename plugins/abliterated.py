"""`abliterated:MODEL`: generate with an abliterated model, saved or made on the fly.

Model forms:
- `abliterated:FOLDER`: a folder written by `deccp-eval abliterate` (plain generation).
- `abliterated:BASE@DIRECTION`: the base model (path or hub id) with the stored edit applied at
  load time; DIRECTION is a `direction.safetensors` file or a folder that holds one (such as an
  abliterated folder). The edit is the same weight orthogonalization the export ran, so the
  outputs match the saved folder's.
- `abliterated:BASE` with options `{direction: PATH}` (a models file); the options
  (`AbliteratedBackend.Options`) may also override `direction_index`, `max_weight` (uniform weight
  on every layer), `embeddings`, `norm_preserve`, and set `mode: hooks` to project at run time
  instead of editing weights.
- `abliterated:ALIAS`: a model alias's ready abliterated copy (`ModelAlias.abliterated`): for
  `deccp-toy`, the demo's abliterated toy (made on first use, then cached).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from deccp_eval.backends.contract import Options as OptionsBase
from deccp_eval.backends.fingerprint import model_fingerprint
from deccp_eval.backends.local_weights import LocalHFBackend, local_fingerprint, model_alias, resolve_path
from deccp_eval.base.errors import UsageError
from deccp_eval.base.hookspecs import hookimpl


def split_spec(model: str) -> tuple[str, str | None]:
    """`BASE@DIRECTION` -> (BASE, DIRECTION) when DIRECTION exists on disk; else (model, None)."""
    base, sep, direction = model.rpartition("@")
    if sep and base and Path(direction).exists():
        return base, direction
    return model, None


def direction_file(path: str | Path) -> Path:
    from deccp_eval.training.abliteration.direction import DIRECTION_FILE

    p = Path(path)
    if p.is_dir():
        p = p / DIRECTION_FILE
    if not p.is_file():
        raise UsageError(f"{path}: no direction file (expected {DIRECTION_FILE} written by `deccp-eval abliterate`)")
    return p


class AbliteratedBackend(LocalHFBackend):
    name = "abliterated"
    description = "HF model with the refusal direction removed: a saved folder, or BASE@DIRECTION applied on load"

    class Options(OptionsBase):
        """The stored edit and overrides of its parameters (unset: what the direction file recorded)."""

        direction: str | None = Field(None, description="direction.safetensors, or a folder holding one")
        direction_index: float | None = Field(None, description="layer position of the direction")
        max_weight: float | None = Field(None, description="uniform ablation weight on every layer")
        embeddings: bool | None = Field(None, description="also orthogonalize the embeddings")
        norm_preserve: bool | None = Field(None, description="keep each weight row's norm")
        mode: Literal["weights", "hooks"] | None = Field(None, description="edit weights, or project at run time")

    opts: Options  # what parse_options() builds: this class's options

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base, direction = split_spec(self.model)
        self.direction = direction or self.opts.direction
        self.overrides = self.opts.model_dump(exclude_none=True, exclude={"direction"})

    @classmethod
    def derived_from(cls, model: str) -> str | None:
        """`hf:BASE` for `BASE`, `BASE@DIRECTION` (the direction file need not be here: a store is
        read anywhere) or a saved folder's name."""
        base, direction = split_spec(model)
        if direction is None and not Path(model).exists():
            base = model.rpartition("@")[0] or model
        return f"hf:{base}"

    def _ready_copy(self) -> Callable[[], Any] | None:
        """A model alias's ready abliterated copy, when the spec names one and no direction."""
        alias = model_alias(self.base) if self.direction is None else None
        return alias.abliterated if alias is not None else None

    def fingerprint(self) -> str:
        """The base model's fingerprint, the direction file's content and every override."""
        parts: dict[str, Any] = {}
        ready = self._ready_copy()
        if self.direction is not None:
            parts["direction"] = model_fingerprint(str(direction_file(self.direction)))
        elif ready is not None:  # the part's name predates aliases: stored keys stay valid
            parts["abliterated_toy"] = model_fingerprint(str(ready()))
        return local_fingerprint(self, self.base, self.overrides, **parts)

    def check(self) -> None:
        super().check()
        if self.direction is not None:
            direction_file(self.direction)
        elif self._ready_copy() is None and not Path(self.base).is_dir():
            raise UsageError(
                f"abliterated:{self.model}: not a saved folder; give a direction as "
                "abliterated:BASE@DIRECTION_FILE or options extra.direction"
            )

    def load(self) -> tuple[Any, Any]:
        if self._model is None:
            from deccp_eval.backends.torch_utils import load_model

            ready = self._ready_copy()
            path = str(ready()) if ready is not None else resolve_path(self.base)
            self._model, self._tokenizer = load_model(path, options=self.options.load)
            self._model = self.prepare(self._model)
        return self._model, self._tokenizer

    def prepare(self, model: Any) -> Any:
        """Apply the stored edit to the base model (nothing to do for a saved folder)."""
        if self.direction is None:
            return model
        from deccp_eval.training.abliteration.apply import (
            AbliterationParams,
            Kernel,
            ablation_hooks,
            offloaded_writers,
            orthogonalize_,
        )
        from deccp_eval.training.abliteration.direction import load_direction

        dirs, chosen, stored = load_direction(direction_file(self.direction))
        o = self.overrides
        data = dict(stored)
        if not data:
            n_layers = dirs.n_positions - 1
            data = {"direction_index": float(round(0.6 * n_layers)), "kernel": Kernel.uniform(n_layers).model_dump()}
        if "max_weight" in o:
            data["kernel"] = Kernel.uniform(dirs.n_positions - 1, float(o["max_weight"])).model_dump()
        for key in ("direction_index", "embeddings", "norm_preserve"):
            if key in o:
                data[key] = o[key]
        params = AbliterationParams.model_validate(data)
        if chosen is not None and "direction_index" not in o and stored:
            direction = chosen
        else:
            direction = dirs.direction(params.direction_index, params.project_harmless)
        if o.get("mode") == "hooks" or offloaded_writers(model):  # disk-offloaded weights cannot be edited
            self._hooks: Any = ablation_hooks(model, direction, params)
            self._hooks.__enter__()
        else:
            orthogonalize_(model, direction, params)
        return model

    def close(self) -> None:
        hooks = getattr(self, "_hooks", None)
        if hooks is not None:
            hooks.__exit__(None, None, None)
            self._hooks = None
        super().close()


@hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register(AbliteratedBackend)
