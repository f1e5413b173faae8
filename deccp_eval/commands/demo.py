"""`deccp-eval demo`: offline end to end on the toy model."""

from __future__ import annotations

import sys
from pathlib import Path
import click

from deccp_eval.commands.common import db_option, setup_logging


@click.command()
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N question pairs.")
@click.option("--realign", is_flag=True,
              help="Also re-align the abliterated toy on gold answers (KTO, LoRA) and add it as a third model; "
                   "minutes on two cores the first time, cached after.")
@click.option("-v", "--verbose", count=True)
@db_option
def demo(limit: int | None, realign: bool, verbose: int, db: Path) -> None:
    """Offline end to end: build the toy model, run it on the built-in set (EN+ZH), judge, leaderboard."""
    from deccp_eval.demo import run_demo

    setup_logging(db, verbose)
    sys.exit(run_demo(db, limit, realign))
