"""Errors a user can act on; the CLI prints their message without a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class DeccpError(Exception):
    """Base for errors the CLI reports as a clean message (exit code 2 for usage errors)."""

    exit_code = 1


class UsageError(DeccpError):
    exit_code = 2


class DatasetError(UsageError):
    """A dataset that cannot be read or has bad rows: a usage error with its own type for callers to catch."""


class MissingDependency(UsageError):
    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(f"{feature} needs the '{package}' package. Install it with: pip install 'deccp-eval[{extra}]'")


class StoreError(UsageError):
    """The --db file cannot serve as a store: not SQLite, not ours, too new, unreadable or locked."""


def validation_problems(exc: ValidationError, quote: bool = False, whole: str = "") -> str:
    """A pydantic ValidationError as one readable line, `loc: msg; loc: msg` (the one way every
    boundary words it). `quote` writes `field 'loc': msg`; `whole` names an error about the whole
    object, whose location is empty."""
    parts = []
    for e in exc.errors():
        where = ".".join(map(str, e["loc"])) or whole
        parts.append(f"field '{where}': {e['msg']}" if quote else f"{where}: {e['msg']}")
    return "; ".join(parts)
