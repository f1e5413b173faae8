"""The plugin hooks, at the path third-party plugins import: a thin re-export of
`deccp_eval.base.hookspecs`."""

from deccp_eval.base.hookspecs import (hookspec, hookimpl, register_backends, register_judges, register_datasets,
                                       register_commands)

__all__ = ["hookspec", "hookimpl", "register_backends", "register_judges", "register_datasets", "register_commands"]
