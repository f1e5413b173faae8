"""The helpers that duplicated code was folded into: each boundary still words its errors as before,
and the composite judges still check, close and ask for references through their members."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from deccp_eval.backends.contract import BackendOptions
from deccp_eval.backends.pricing import Price, parse_prices
from deccp_eval.base.errors import DatasetError, UsageError, validation_problems
from deccp_eval.base.jsonl import read_jsonl_as
from deccp_eval.judging.contract import CompositeJudge, Judge, JudgeItem, OnJudgment, make_judge
from deccp_eval.judging.label_scores import LabelRow, load_labels
from deccp_eval.run import models_file
from deccp_eval.run.gold import import_gold
from deccp_eval.store.db import Store, pick_judge


def test_validation_problems_wordings() -> None:
    with pytest.raises(ValidationError) as bad_fields:
        Price.model_validate({"input": -1, "output": "x"})
    assert validation_problems(bad_fields.value) == (
        "input: Input should be greater than or equal to 0; "
        "output: Input should be a valid number, unable to parse "
        "string as a number"
    )
    assert validation_problems(bad_fields.value, quote=True).startswith(
        "field 'input': Input should be greater than or equal to 0; field 'output': "
    )
    with pytest.raises(ValidationError) as not_a_mapping:
        Price.model_validate([1])
    # an error about the whole object has no location: `whole` names it, else the location is empty
    assert validation_problems(not_a_mapping.value) == ": Input should be a valid dictionary or instance of Price"
    assert validation_problems(not_a_mapping.value, whole="prices").startswith("prices: Input should be")
    assert validation_problems(not_a_mapping.value, quote=True, whole="row").startswith("field 'row': Input should")


def test_boundaries_keep_their_messages(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as prices:
        parse_prices([1], where="--prices")  # type: ignore[arg-type]
    assert str(prices.value) == (
        "--prices: expected {input: USD per 1M tokens, output: USD per 1M tokens, optional "
        "batch_input, batch_output} (prices: Input should be a valid dictionary or "
        "instance of Price)"
    )
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  ds:\n    backend: openai\n    modle: deepseek-chat\n", encoding="utf-8")
    with pytest.raises(UsageError) as models:
        models_file.load(path)
    assert str(models.value) == (f"{path}: model 'ds': model: Field required; modle: Extra inputs are not permitted")


def test_label_and_gold_files_read_the_same_way(tmp_path: Path) -> None:
    good = {"prompt": "Q?", "response": "A.", "label": "answer"}
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "label": "maybe"}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"labels\.jsonl: line 3: field 'label': Input should be 'answer'"):
        load_labels(labels)
    labels.write_text(json.dumps(good) + "\n", encoding="utf-8")
    assert [r.label.value for r in read_jsonl_as(labels, LabelRow)] == ["answer"]

    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        json.dumps(
            {
                "dataset": "d",
                "prompt_id": "p",
                "model": "m",
                "text": "t",
                "created": "c",
                "template_hash": "",
                "sample": "x",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    with Store(tmp_path / "s.db") as store, pytest.raises(DatasetError, match=r"gold\.jsonl: line 1: field 'sample'"):
        import_gold(store, gold)


def test_pick_judge_is_the_one_policy() -> None:
    counts = {"keyword": 3, "clf": 5, "llm": 5}
    assert pick_judge(counts, None, counts) == "clf"  # most judged; ties alphabetical
    assert pick_judge(counts, "keyword", counts) == "keyword"
    assert pick_judge([], None) is None
    with pytest.raises(UsageError, match=r"judge 'panel' has no judgments here; available: clf, keyword, llm"):
        pick_judge(counts, "panel", counts)


def test_required_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "empty.db") as store:
        assert store.response_rows() == []
        with pytest.raises(UsageError, match=r"^no stored responses for run r1: run `deccp-eval run`"):
            store.response_rows(run_id="r1", required=True)


class Recording(Judge):
    """A member that records what the composite asks of it."""

    name = "recording"

    def __init__(self, log: list[str], tag: str, uses_reference: bool = False) -> None:
        super().__init__(tag)
        self.log, self.tag = log, tag
        self.uses_reference = uses_reference  # type: ignore[misc]

    def check(self) -> None:
        self.log.append(f"check {self.tag}")

    def judge(self, items: Sequence[JudgeItem], on_judgment: OnJudgment) -> None:
        raise AssertionError("not called here")

    def close(self) -> None:
        self.log.append(f"close {self.tag}")


@pytest.mark.parametrize("spec", ["panel:keyword,keyword", "cascade:keyword,keyword"])
def test_composite_judges_go_through_every_member(spec: str) -> None:
    judge = make_judge(spec, BackendOptions())
    assert isinstance(judge, CompositeJudge) and len(judge.members) == 2 and not judge.uses_reference
    log: list[str] = []
    judge.members = [Recording(log, "a"), Recording(log, "b", uses_reference=True)]
    assert judge.uses_reference
    judge.check()
    judge.close()
    assert log == ["check a", "check b", "close a", "close b"]


def _pid_and_double(x: int) -> tuple[int, int]:
    import os

    return os.getpid(), 2 * x


def test_forked_runs_apart_and_falls_back_to_this_process() -> None:
    """base.forked: the value from a forked child; an error, or another thread running (fork would be
    unsafe), and the function runs here, raising as it would without the child."""
    import os
    import threading

    from deccp_eval.base.forked import Forked

    alone = threading.active_count() == 1
    pid, value = Forked(_pid_and_double, 21).result()
    assert value == 42 and (pid != os.getpid()) == alone
    # a fresh interpreter has one thread, so the child is always used there, whatever this worker left running
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; from deccp_eval.base.forked import Forked; print(Forked(os.getpid).result() != os.getpid())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == "True", child.stderr
    with pytest.raises(ZeroDivisionError):
        Forked(divmod, 1, 0).result()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert Forked(_pid_and_double, 1).result() == (os.getpid(), 2)
    finally:
        stop.set()
        other.join()
