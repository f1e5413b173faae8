"""`deccp-eval demo`: offline end to end on the toy model."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from deccp_eval.commands.common import command_line, db_option, setup_logging


@click.command()
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N question pairs.")
@click.option(
    "--realign/--no-realign",
    default=True,
    show_default=True,
    help="Re-align the abliterated toy on gold answers (DPO, LoRA) and add it as a third model; about a "
    "minute on two cores the first time, cached after.",
)
@click.option(
    "--real-models/--no-real-models",
    default=True,
    show_default=True,
    help="Import SpeechMap's public answers of 37 real models (data/speechmap/) and show their censorship, "
    "language gap, thought suppression and agreement with SpeechMap's verdicts; results/real_models/.",
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Also show the libraries' progress bars, trainer logs and warnings (otherwise in deccp-eval.log "
    "beside the store).",
)
@db_option
def demo(limit: int | None, realign: bool, real_models: bool, verbose: int, db: Path) -> None:
    """Offline end to end on a toy: build it, abliterate it, re-align the abliterated toy; run all three on
    the toy's held-out phrasings (EN+ZH), judge, leaderboard, report."""
    from deccp_eval.demo.demo import run_demo

    setup_logging(db, verbose, quiet_libraries=True)
    sys.exit(run_demo(db, limit, realign, real_models, command=command_line()))
