"""`deccp-eval plugins`: list backends, judges and datasets with the plugin that provides each."""

from __future__ import annotations

import click


@click.command()
def plugins() -> None:
    """List backends, judges and datasets with the plugin that provides each."""
    from deccp_eval import pluginmanager

    for title, reg in (("backends", pluginmanager.backends()), ("judges", pluginmanager.judges()),
                       ("datasets", pluginmanager.datasets())):
        click.echo(f"{title}:")
        for name, r in sorted(reg.items()):
            desc = getattr(r.obj, "description", "") or (r.obj.__doc__ or "").strip().split("\n")[0]
            click.echo(f"  {name:32} {r.plugin:34} {desc}")
