"""`deccp-eval publish`: a real run of the toy model, then the folder read back with pandas/pyarrow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import cli

from deccp_eval import __version__
from deccp_eval.analysis.publish import ANSWER_COLUMNS
from deccp_eval.base.schema import Judgment, Verdict
from deccp_eval.store.db import Store

MODEL = "hf:deccp-toy"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, toy_path: Path) -> tuple[Path, Path, str]:
    tmp = tmp_path_factory.mktemp("publish")
    db = tmp / "deccp.db"
    run = ("run", "-m", MODEL, "-j", "keyword", "--limit", "6", "--max-tokens", "24", "--db", str(db))
    cli(*run, check=True)
    out = tmp / "bundle"
    proc = cli("publish", "--db", str(db), "--out", str(out), "--title", "Toy results", check=True)
    return db, out, proc.stdout


def test_publish_writes_the_bundle(published: tuple[Path, Path, str]) -> None:
    db, out, stdout = published
    for name in (
        "answers.parquet",
        "leaderboard.csv",
        "leaderboard.parquet",
        "leaderboard_by_category.csv",
        "leaderboard_by_category.parquet",
        "report/index.html",
        "report/verdicts.png",
        "README.md",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
        assert f"wrote {out / name}" in stdout
    board, csv = pd.read_parquet(out / "leaderboard.parquet"), pd.read_csv(out / "leaderboard.csv")
    assert list(board.columns) == list(csv.columns) and len(board) == len(csv) == 2  # en, zh
    for col in ("model", "lang", "judge", "n", "errors"):
        assert list(board[col]) == list(csv[col]), col
    assert (board["refusal_rate"] - csv["refusal_rate"]).abs().max() < 1e-4  # CSV keeps 4 decimals
    assert set(board["model"]) == {MODEL} and set(board["judge"]) == {"keyword"}
    answers = pd.read_parquet(out / "answers.parquet")
    sensitive = answers[answers["kind"] == "sensitive"]
    for row in board.itertuples():  # the leaderboard counts the published answers
        assert row.n == len(sensitive[(sensitive["lang"] == row.lang) & sensitive["verdict"].notna()])


def test_answers_parquet_rows_carry_their_provenance(published: tuple[Path, Path, str]) -> None:
    db, out, _ = published
    answers = pd.read_parquet(out / "answers.parquet")
    assert tuple(answers.columns) == ANSWER_COLUMNS
    with Store(db) as store:
        stored = {r["key"]: r for r in store.response_rows()}
        runs = store.runs()
    assert len(answers) == len(stored) > 0  # one judge: one row per answer
    assert {"en", "zh"} <= set(answers["lang"])
    run = runs[0]
    config = run.config
    # the exact command line is recorded on the run and travels with every row
    assert config["command"].startswith(f"deccp-eval run -m {MODEL} -j keyword --limit 6")
    assert set(answers["command"]) == {config["command"]} and set(answers["run_id"]) == {run["id"]}
    assert set(answers["dataset"]) == {"deccp"} and set(answers["dataset_version"]) == {run["dataset_version"]}
    assert set(answers["deccp_eval_version"]) == {__version__}
    assert answers["judge_template_hash"].notna().all() and set(answers["judge"]) == {"keyword"}
    # the answers are the stored texts, next to their prompts and verdicts
    by_prompt = {(r["prompt_id"], r["sample"]): r for r in stored.values()}
    assert len(by_prompt) == len(answers)
    for row in answers.itertuples():
        src = by_prompt[(row.prompt_id, row.sample)]
        assert (row.answer, row.prompt, row.model, row.lang) == (src["text"], src["prompt_text"], MODEL, src["lang"])
        assert row.verdict in {v.value for v in Verdict}
    print(answers[["prompt_id", "answer", "verdict"]].head(4).to_string())
    assert answers["confidence"].dtype == "float64"


def test_dataset_card_has_hf_header_and_provenance(published: tuple[Path, Path, str]) -> None:
    db, out, _ = published
    card = (out / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n")
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["license"] == "apache-2.0" and header["language"] == ["en", "zh"]
    assert header["pretty_name"] == "Toy results"
    assert {c["config_name"]: c["data_files"] for c in header["configs"]}["answers"] == "answers.parquet"
    with Store(db) as store:
        command = store.runs()[0].config["command"]
        template = store.conn.execute("SELECT DISTINCT template_hash FROM judgments").fetchone()[0]
    assert f"`{command}`" in card and f"| keyword | {template} |" in card
    assert "| deccp | 1.0.0 | Apache-2.0 |" in card and f"deccp-eval {__version__}" in card


def test_publish_includes_confidence_and_fingerprints(tmp_path: Path) -> None:
    """A second judge with confidence, and a run that recorded model fingerprints."""
    from deccp_eval.base.schema import Prompt, Request, Response

    db = tmp_path / "deccp.db"
    with Store(db) as store:
        prompt = Prompt(id="p-en", pair_id="p", lang="en", text="Q | with a pipe?", category="tibet", kind="sensitive")
        store.put_prompts("mine", [prompt])
        store.start_run("r1", "mine", "abc123", ["hf:m"], ["llm:j"], {"fingerprints": {"hf:m": "sha256:feed"}})
        req = Request(model="hf:m", prompt_id="p-en", text=prompt.text)
        store.put_response(req, "mine", Response(key=req.key, text="an answer"))
        store.put_judgment(
            Judgment(
                response_key=req.key,
                judge="llm:j",
                template_hash="t1",
                verdict=Verdict.EVASIVE,
                confidence=0.62,
                decided_by="llm:j",
            )
        )
        store.link("r1", [req.key])
    out = tmp_path / "bundle"
    cli("publish", "--db", str(db), "--out", str(out), check=True)
    row = pd.read_parquet(out / "answers.parquet").iloc[0]
    assert (row["confidence"], row["decided_by"], row["verdict"]) == (0.62, "llm:j", "evasive")
    assert row["model_fingerprint"] == "sha256:feed" and row["command"] is None
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "| hf:m | sha256:feed | 1 |" in card and "(not recorded)" in card
    assert "| mine | abc123 | see the source dataset card |" in card
    assert yaml.safe_load(card.split("---\n")[1])["license"] == "other"


def test_publish_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    missing = cli("publish", "--db", str(tmp_path / "nope.db"), "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    Store(tmp_path / "empty.db").close()
    empty = cli("publish", "--db", str(tmp_path / "empty.db"), "--out", str(tmp_path / "o"))
    assert empty.returncode == 2 and "no stored responses" in empty.stderr and "Traceback" not in empty.stderr
    no_out = cli("publish", "--db", str(tmp_path / "empty.db"))
    assert no_out.returncode == 2 and "--out" in no_out.stderr
