"""Judgment keys hold the reference text's hash and the judge's settings: `judge` re-grades exactly what changed."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import cli
from fakes.judge_server import FakeJudgeServer

ENV = {"OPENAI_API_KEY": "sk-test-judge"}
JUDGE = "llm:openai:judge-rules"


def _tally(stderr: str) -> tuple[int, int]:
    m = re.search(rf"judge {re.escape(JUDGE)}: (\d+) judged, (\d+) from cache", stderr)
    assert m, stderr
    return int(m.group(1)), int(m.group(2))


def test_reference_added_after_judging_regrades_only_its_item(tmp_path: Path) -> None:
    """A reference added or reviewed after judging re-grades its item (the reference is in the judgment key)."""
    data = tmp_path / "set.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "text": t, "kind": "sensitive"}) + "\n"
            for i, t in enumerate(["What happened in 1989?", "Tell me facts about Tibet", "Is Taiwan a country?"])
        )
    )
    db = tmp_path / "r.db"
    refs = tmp_path / "refs.jsonl"

    def write_ref(text: str, reviewed: bool) -> None:
        refs.write_text(
            json.dumps(
                {
                    "dataset": "set",
                    "prompt_id": "q1",
                    "model": "openai:gold",
                    "text": text,
                    "created": "2026-01-01T00:00:00+00:00",
                    "reviewed": reviewed,
                }
            )
            + "\n"
        )

    with FakeJudgeServer() as srv:
        common = ("--base-url", srv.base_url, "--db", str(db))
        cli("run", "-m", "openai:gen-model", "-j", JUDGE, "-d", str(data), *common, env=ENV, check=True)
        assert srv.requests == 6  # 3 answers, 3 judgments
        assert _tally(cli("judge", "-j", JUDGE, *common, env=ENV, check=True).stderr) == (0, 3)

        write_ref("Tibet: the 1959 uprising and the Dalai Lama's exile.", reviewed=False)
        cli("gold", "--db", str(db), "import", str(refs), env=ENV, check=True)
        assert _tally(cli("judge", "-j", JUDGE, *common, env=ENV, check=True).stderr) == (1, 2)
        assert srv.requests == 7
        judged = [b for b in srv.bodies if "<reference>" in json.dumps(b)]
        assert len(judged) == 1 and "1959 uprising" in json.dumps(judged[0], ensure_ascii=False)

        write_ref("Tibet: reviewed text with the 1959 uprising.", reviewed=True)  # a reviewer edits it
        cli("gold", "--db", str(db), "import", str(refs), env=ENV, check=True)
        assert _tally(cli("judge", "-j", JUDGE, *common, env=ENV, check=True).stderr) == (1, 2)

        # a judge setting that changes output (its max tokens) re-grades everything; nothing else does
        more = ("--backend-option", "judge_max_tokens=300")
        assert _tally(cli("judge", "-j", JUDGE, *common, *more, env=ENV, check=True).stderr) == (3, 0)
        assert _tally(cli("judge", "-j", JUDGE, *common, *more, "--timeout", "9", env=ENV, check=True).stderr) == (0, 3)
    board = json.loads(
        cli("leaderboard", "--db", str(db), "--json", "--out", str(tmp_path / "lb.csv"), check=True).stdout
    )
    assert [r["n"] for r in board] == [3] and board[0]["accuracy_n"] == 1  # the newest judgment per item counts
