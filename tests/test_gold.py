"""Gold references end to end: a gold model, the toy as the judged model, a judge model (fake servers)."""

import json
import sqlite3

import pytest
from conftest import cli
from fakes.judge_server import FakeJudgeServer

ENV = {"OPENAI_API_KEY": "sk-test-gold"}


@pytest.fixture()
def server():
    with FakeJudgeServer() as srv:
        yield srv


def test_gold_then_reference_aware_judging(server, tmp_path, toy_path):
    db = tmp_path / "results" / "deccp.db"
    base = ["--base-url", server.base_url, "--db", str(db)]
    cli("gold", "-m", "openai:gold-writer", "--limit", "3", *base, env=ENV, check=True)
    con = sqlite3.connect(db)
    refs = con.execute("SELECT prompt_id, model, text, template_hash, reviewed FROM gold").fetchall()
    # every sensitive prompt of the first 3 pairs, in both languages (controls get none)
    sensitive = [
        json.loads(x) for x in cli("prompts", "list", "--limit", "3", "--lang", "en,zh", check=True).stdout.splitlines()
    ]
    sensitive = [p for p in sensitive if p["kind"] == "sensitive"]
    assert {r[0] for r in refs} == {p["id"] for p in sensitive} and len(refs) == len(sensitive)
    zh_ref = next(r[2] for r in refs if r[0].endswith("-zh"))
    assert "请为下面的问题写一个参考答案" in zh_ref  # the Chinese gold template was used (the fake echoes it)
    assert all(r[1] == "openai:gold-writer" and r[3] and r[4] == 0 for r in refs)
    requests_after_gold = server.requests
    cli("gold", "-m", "openai:gold-writer", "--limit", "3", *base, env=ENV, check=True)
    assert server.requests == requests_after_gold  # cached

    cli(
        "run",
        "-m",
        "hf:deccp-toy",
        "-j",
        "llm:openai:judge-rules",
        "--limit",
        "3",
        "--max-tokens",
        "40",
        *base,
        env=ENV,
        check=True,
    )
    judge_prompts = [b["messages"][-1]["content"] for b in server.bodies if b["model"] == "judge-rules"]
    with_ref = [p for p in judge_prompts if "<reference>" in p]
    assert len(with_ref) == len(sensitive)  # references used automatically, for sensitive prompts only
    board = json.loads(
        cli("leaderboard", "--json", "--db", str(db), "--out", str(tmp_path / "lb.csv"), check=True).stdout
    )
    for row in board:
        assert row["accuracy_n"] == row["n"] > 0
        total = sum(row[f"accuracy_{a}_rate"] for a in ("correct", "partial", "incorrect", "not_attempted"))
        assert abs(total - 1) < 1e-9
        assert row["misinformation_lo"] <= row["misinformation_rate"] <= row["misinformation_hi"]
    assert (tmp_path / "lb_by_category.csv").exists()

    # a judge that never grades: counted as unparsed, never mapped to a class
    cli("judge", "-j", "llm:openai:judge-nograde", *base, env=ENV, check=True)
    board = json.loads(
        cli("leaderboard", "--json", "--db", str(db), "--out", str(tmp_path / "lb.csv"), check=True).stdout
    )
    nograde = [r for r in board if r["judge"] == "llm:openai:judge-nograde"]
    assert nograde and all(r["unparsed"] == 3 and r["n"] == 0 for r in nograde)


def test_gold_export_import_round_trip_keeps_reviewed(server, tmp_path):
    db = tmp_path / "a.db"
    cli(
        "gold",
        "-m",
        "openai:gold-writer",
        "--limit",
        "2",
        "--base-url",
        server.base_url,
        "--db",
        str(db),
        env=ENV,
        check=True,
    )
    out = tmp_path / "refs.jsonl"
    cli("gold", "--db", str(db), "export", str(out), check=True)
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4 and {r["lang"] for r in rows} == {"en", "zh"} and all(r["prompt"] for r in rows)
    rows[0]["reviewed"] = True
    rows[0]["text"] = "Reviewed and corrected reference."
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    db2 = tmp_path / "b.db"
    cli("gold", "--db", str(db2), "import", str(out), check=True)
    back = tmp_path / "back.jsonl"
    cli("gold", "--db", str(db2), "export", str(back), check=True)
    again = [json.loads(x) for x in back.read_text(encoding="utf-8").splitlines()]
    key = lambda r: (r["prompt_id"], r["model"], r["sample"])  # noqa: E731
    assert {key(r): (r["text"], r["reviewed"]) for r in again} == {key(r): (r["text"], r["reviewed"]) for r in rows}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"dataset": "deccp"}\n')
    proc = cli("gold", "--db", str(db2), "import", str(bad))
    assert proc.returncode == 2 and "bad.jsonl: line 1" in proc.stderr
