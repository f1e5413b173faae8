"""`deccp-eval toy build`: the offline toy model."""

from __future__ import annotations

from pathlib import Path

import click

from deccp_eval.commands.common import Group


@click.group(cls=Group)
def toy() -> None:
    """The offline toy model (a tiny censored Qwen2 chat model trained here)."""


@toy.command("build")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the HF model folder here (default: the user cache).",
)
@click.option("--force", is_flag=True, help="Retrain even when cached.")
def toy_build(out: Path | None, force: bool) -> None:
    """Train (about a minute on 2 cores) or reuse the toy model; prints its folder."""
    from deccp_eval.toy import model as toy_mod

    click.echo(str(toy_mod.build(out, force=force)))
