"""`deccp-eval plugins`: list backends, judges and datasets with the plugin that provides each."""

from __future__ import annotations

import click


@click.command()
def plugins() -> None:
    """List backends (with their --backend-option names and capabilities), judges, datasets and model
    aliases with the plugin that provides each."""
    from deccp_eval.backends.contract import capabilities, option_names
    from deccp_eval.base import pluginmanager

    for title, reg in (
        ("backends", pluginmanager.backends()),
        ("judges", pluginmanager.judges()),
        ("datasets", pluginmanager.datasets()),
        ("model aliases", pluginmanager.model_aliases()),
    ):
        click.echo(f"{title}:")
        for name, r in sorted(reg.items()):
            desc = getattr(r.obj, "description", "") or (r.obj.__doc__ or "").strip().split("\n")[0]
            click.echo(f"  {name:32} {r.plugin:34} {desc}")
            if title == "backends" and getattr(r.obj, "Options", None) is not None:
                names = option_names(r.obj.Options)
                if names:
                    click.echo(f"  {'':32} {'':34} options: {', '.join(names)}")
            if title == "backends" and capabilities(r.obj):
                click.echo(f"  {'':32} {'':34} capabilities: {', '.join(capabilities(r.obj))}")
