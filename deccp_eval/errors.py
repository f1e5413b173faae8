"""Errors a user can act on; the CLI prints their message without a traceback."""


class DeccpError(Exception):
    """Base for errors the CLI reports as a clean message (exit code 2 for usage errors)."""

    exit_code = 1


class UsageError(DeccpError):
    exit_code = 2


class DatasetError(UsageError):
    pass


class MissingDependency(UsageError):
    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the '{package}' package. Install it with: pip install 'deccp-eval[{extra}]'"
        )


class StoreError(UsageError):
    """The --db file cannot serve as a store: not SQLite, not ours, too new, unreadable or locked."""
