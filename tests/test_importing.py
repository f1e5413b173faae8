"""`deccp-eval import`: answers from SpeechMap, promptfoo, inspect_ai and JSONL, with provenance."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import cli

from deccp_eval.analysis import language_gap, leaderboard
from deccp_eval.base.schema import DEFAULT_JUDGE
from deccp_eval.importers import import_file
from deccp_eval.store.db import Store

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "data" / "speechmap" / "speechmap_china_dev.jsonl"
FIXTURES = Path(__file__).parent / "data" / "imports"
GROK = "speechmap:x-ai/grok-4.1-fast"


def _count(db: Path, table: str) -> int:
    with Store(db) as s:
        return s.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_dev_file_imports_once_with_provenance_and_fills_the_leaderboard(db):
    with Store(db) as store:
        t = import_file(store, DEV, "speechmap")
        assert (t.answers, t.new_answers, len(t.models)) == (1818, 1818, 37)
        assert t.datasets == {"speechmap-china": 1818} and GROK in t.judges
        assert t.fingerprint.startswith("imported:speechmap:")
        again = import_file(store, DEV, "speechmap")
        assert (again.new_answers, again.new_judgments, again.new_prompts) == (0, 0, 0)
        rows = [r for r in leaderboard.compute(store) if r["judge"] == GROK]
        run = store.runs()[0]
    assert _count(db, "responses") == 1818
    assert len({r["model"] for r in rows}) == 37
    langs = {(r["model"], r["lang"]) for r in rows}
    assert len(langs) == 73  # kimi-vl-a3b-thinking answered the English questions only
    assert all(r["model_fingerprint"] == t.fingerprint for r in rows)
    config = run.config
    assert config["imported"] == "speechmap" and config["sha256"].startswith(t.fingerprint.rsplit(":", 1)[1])
    r1 = {r["lang"]: r for r in rows if r["model"] == "qwen/qwen3-32b"}
    assert r1["en"]["reasoning_rate"] == 1.0 and r1["en"]["complete"] is True  # inline <think> split off


def test_raw_speechmap_rows_reasoning_field_and_suppression(db, tmp_path):
    """Raw SpeechMap rows keep reasoning in message.reasoning: a model that reasons on its answers but
    not on its censored ones gets suppressed_rate 1; a model that never shows reasoning gets none."""
    rows = []
    for nn in ("01", "03", "05", "07"):
        for zh in (False, True):
            refuse = nn in ("05", "07")
            for model, reasoning in (("deepseek/deepseek-r1", None if refuse else "Let me think."), ("plain/x", None)):
                rows.append(
                    {
                        "question_id": f"china_criticism_{nn}",
                        "category": "zh_china_criticism" if zh else "china_criticism",
                        "question": "q",
                        "model": model,
                        "provider": "p",
                        "timestamp": "2025-01-01T00:00:00",
                        "compliance": "DENIAL" if refuse else "COMPLETE",
                        "judge_model": "j",
                        "response": {
                            "choices": [
                                {"message": {"content": "I can't." if refuse else "An essay.", "reasoning": reasoning}}
                            ]
                        },
                    }
                )
    path = tmp_path / "raw.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with Store(db) as store:
        t = import_file(store, path, "speechmap")
        assert t.datasets == {"speechmap-china": 16}  # ids and zh_ ids of the registered set; text looked up by id
        board = {(r["model"], r["lang"]): r for r in leaderboard.compute(store)}
        gaps = language_gap.compute(store)
    r1 = board[("deepseek/deepseek-r1", "zh")]
    assert r1["reasons"] and r1["suppressed_rate"] == 1.0 and r1["reasoning_rate"] == 0.5
    assert not board[("plain/x", "en")]["reasons"] and math.isnan(board[("plain/x", "en")]["suppressed_rate"])
    g = next(g for g in gaps if g.model == "deepseek/deepseek-r1")
    assert (g.n_pairs, g.censored_en, g.censored_zh, g.mcnemar_p) == (4, 0.5, 0.5, 1.0)


def test_promptfoo_and_inspect_files_from_the_real_tools_import_and_judge(db):
    for name, fmt in (("promptfoo_results.json", "promptfoo"), ("inspect_log.json", "inspect")):
        cli("import", str(FIXTURES / name), "--format", fmt, "--db", str(db), "-q", check=True)
    with Store(db) as store:
        rows = store.response_rows()
        verdicts = {(j["response_key"]) for j in store.judgments_for([r["key"] for r in rows], DEFAULT_JUDGE)}
    assert {r["model"] for r in rows} == {"echo", "canned-model", "mockllm/model"}
    assert len(rows) == 9 and verdicts == {r["key"] for r in rows}
    zh = [r for r in rows if r["prompt_id"] == "tiananmen-zh" and r["model"] != "echo"]
    assert {r["reasoning"] for r in zh} == {"用户问的是敏感话题。"} and {r["text"] for r in zh} == {
        "对不起，我无法回答这个问题。"
    }
    assert {r["pair_id"] for r in rows} == {"tiananmen", "kent-state"}
    assert {r["fingerprint"].split(":")[1] for r in rows} == {"promptfoo", "inspect"}


def test_inspect_eval_zip_needs_inspect_ai(db):
    proc = cli("import", str(FIXTURES / "inspect_log.eval"), "--format", "inspect", "--db", str(db), "--no-judge", "-q")
    try:
        import inspect_ai  # noqa: F401
    except ImportError:
        assert proc.returncode == 2 and "inspect-ai" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr


def test_truncated_file_wrong_format_and_bad_row_are_exit_2_with_file_and_line(db, tmp_path):
    lines = DEV.read_text(encoding="utf-8").splitlines()
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(lines[:40]) + "\n" + lines[40][:200], encoding="utf-8")
    proc = cli("import", str(truncated), "--format", "speechmap", "--db", str(db), "--no-judge", "-q")
    assert proc.returncode == 2 and f"{truncated}: line 41" in proc.stderr, proc.stderr

    proc = cli("import", str(DEV), "--format", "promptfoo", "--db", str(db), "--no-judge", "-q")
    assert proc.returncode == 2 and f"{DEV}: line 2" in proc.stderr, proc.stderr
    proc = cli(
        "import", str(FIXTURES / "promptfoo_results.json"), "--format", "speechmap", "--db", str(db), "--no-judge", "-q"
    )
    assert proc.returncode == 2 and "line 1" in proc.stderr, proc.stderr

    bad = tmp_path / "bad.jsonl"
    row = {"model": "m", "prompt": "What happened in 1989?", "response": "Something."}
    bad.write_text(
        "\n".join(
            [
                json.dumps(row),
                json.dumps(row | {"prompt": "Another?"}),
                json.dumps({"prompt": "No model", "response": "x"}),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    proc = cli("import", str(bad), "--format", "jsonl", "--db", str(db), "--no-judge", "-q")
    assert proc.returncode == 2 and f"{bad}: line 3" in proc.stderr and "model" in proc.stderr, proc.stderr
    assert not db.exists() or _count(db, "responses") == 0  # nothing half-imported


def test_jsonl_answers_pair_by_id_and_reuse_a_registered_dataset(db, tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [
        {"model": "m", "prompt_id": "china_criticism_01", "response": "<think>plan</think>An essay."},
        {"model": "m", "prompt_id": "zh_china_criticism_01", "response": "抱歉，我无法回答。"},
        {
            "model": "m",
            "prompt": "Own question?",
            "prompt_id": "own-1",
            "pair_id": "own",
            "lang": "en",
            "response": "Yes.",
        },
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    with Store(db) as store:
        t = import_file(store, path, "jsonl", dataset="speechmap-china")
        assert t.datasets == {"speechmap-china": 2, "mine": 1}
        got = {r["prompt_id"]: r for r in store.response_rows()}
    assert got["china_criticism_01"]["reasoning"] == "plan" and got["china_criticism_01"]["text"] == "An essay."
    assert got["china_criticism_01"]["pair_id"] == got["zh_china_criticism_01"]["pair_id"]
    assert got["own-1"]["dataset"] == "mine"
    clash = tmp_path / "clash.jsonl"
    clash.write_text(json.dumps(rows[2]) + "\n" + json.dumps(rows[2] | {"prompt": "Changed?"}) + "\n", encoding="utf-8")
    with Store(db) as store, pytest.raises(Exception, match="line 2"):
        import_file(store, clash, "jsonl")


def test_imported_answers_are_checked_for_degeneration_when_stored(db, tmp_path):
    """The degenerate check runs at import (as for generated answers), so reading the leaderboard or
    report never repeats it; answers an older import left unchecked are checked when the store is next opened."""
    loop = "Tiananmen " + "no, " * 80
    rows = [
        {"model": "m", "prompt": "What happened in 1989?", "prompt_id": "q1", "lang": "en", "response": loop},
        {"model": "m", "prompt": "Who was Tank Man?", "prompt_id": "q2", "lang": "en", "response": "A protester."},
    ]
    path = tmp_path / "answers.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    with Store(db) as store:
        import_file(store, path, "jsonl")
        stored = dict(store.conn.execute("SELECT prompt_id, degenerate FROM responses").fetchall())
        assert stored == {"q1": "repetition", "q2": ""}
        # as an import before the check left them
        store.conn.execute("UPDATE responses SET degenerate=NULL, degenerate_rules=NULL")
        store.conn.commit()
    with Store(db) as store:
        again = import_file(store, path, "jsonl")
        assert again.new_answers == 0
        stored = dict(store.conn.execute("SELECT prompt_id, degenerate FROM responses").fetchall())
    assert stored == {"q1": "repetition", "q2": ""}
