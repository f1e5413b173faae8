"""`deccp-eval train-judge`: fit the local classifier judge on verdicts another judge already stored."""

from __future__ import annotations

import json
from pathlib import Path


import click

from deccp_eval.commands.common import db_option


@click.command("train-judge")
@click.option("--from", "source", required=True, help="The judge whose stored verdicts to learn, e.g. llm:openai:gpt-4o-mini.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Where to save the classifier.")
@click.option("--test-share", type=click.FloatRange(0.05, 0.5), default=0.2, show_default=True,
              help="Share held out to measure agreement and calibration.")
@db_option
def train_judge(source: str, out: Path, test_share: float, db: Path) -> None:
    """Train `clf:PATH` on the verdicts JUDGE gave to stored answers; prints agreement and calibration.

    \b
    Example:
      deccp-eval train-judge --from llm:openai:gpt-4o-mini --out results/judge.clf
      deccp-eval run -m hf:./model -j cascade:keyword,clf:results/judge.clf,llm:openai:gpt-4o-mini
    """
    from deccp_eval.classifier import features, save, train
    from deccp_eval.errors import UsageError
    from deccp_eval.store import Store

    with Store(db) as store:
        rows = store.conn.execute(
            "SELECT j.verdict, r.text, p.text AS question FROM judgments j JOIN responses r ON r.key = j.response_key "
            "JOIN prompts p ON p.dataset = r.dataset AND p.id = r.prompt_id "
            "WHERE j.judge = ? AND j.verdict IS NOT NULL AND j.parse_status = 'ok' ORDER BY j.created, j.rowid",
            (source,)).fetchall()
    latest = {(r["question"], r["text"]): r["verdict"] for r in rows}  # the newest verdict per answer
    if not latest:
        raise UsageError(f"no parsed verdicts by {source!r} in {db}; judge stored answers with it first")
    texts = [features(q, t or "") for q, t in latest]
    labels = list(latest.values())
    model, report = train(texts, labels, test_share=test_share)
    report.update({"source_judge": source, "n": len(labels)})
    save(model, out, report)
    click.echo(json.dumps(report, ensure_ascii=False))
    click.echo(f"saved {out}: agreement with {source} on the held-out {report['n_test']}: {report['agreement']:.3f}, "
               f"calibration error {report['ece']:.3f}; use it as clf:{out}", err=True)
