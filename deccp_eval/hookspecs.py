"""The plugin hooks, at the path third-party plugins import: a thin re-export of
`deccp_eval.base.hookspecs`."""

from deccp_eval.base.hookspecs import (
    hookimpl,
    hookspec,
    register_backends,
    register_commands,
    register_datasets,
    register_judges,
)

__all__ = ["hookspec", "hookimpl", "register_backends", "register_judges", "register_datasets", "register_commands"]
