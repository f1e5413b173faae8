"""Every bad input is a clear error naming the file (exit 2, no traceback); a byte-order mark is fine."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from conftest import cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deccp_eval.base.errors import DeccpError
from deccp_eval.datasets.loading import load_file
from deccp_eval.judging.label_scores import load_labels
from deccp_eval.run import models_file
from deccp_eval.run.gold import import_gold
from deccp_eval.store.db import Store

ROW = {
    "id": "a-en",
    "pair_id": "a",
    "lang": "en",
    "text": "What happened in 1989?",
    "category": "t",
    "kind": "sensitive",
}


def _clean_exit_2(proc, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


def test_non_utf8_dataset_names_file_line_and_byte(tmp_path: Path) -> None:
    """A non-UTF-8 dataset is an error naming file, line and byte, not a traceback with exit 0."""
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(ROW).encode() + b"\n" + '{"text": "Qu\'est-ce qui s\'est passé ?"}\n'.encode("latin-1"))
    proc = cli("run", "-m", "openai:x", "-d", str(path), "--db", str(tmp_path / "x.db"))
    offset = path.read_bytes().index(b"\xe9")
    _clean_exit_2(proc, str(path), "line 2", f"byte offset {offset}", "not UTF-8")


def test_malformed_json_dataset_and_models_files_name_line_and_column(tmp_path: Path) -> None:
    """A malformed .json dataset and a broken models file are errors naming line and column, not tracebacks."""
    bad_json = tmp_path / "set.json"
    bad_json.write_text('[\n  {"text": "a"},\n  {"text": "b",}\n]\n')
    _clean_exit_2(cli("prompts", "stats", "-d", str(bad_json)), str(bad_json), "line 3, column", "invalid JSON")

    yaml_file = tmp_path / "models.yaml"
    yaml_file.write_text("models:\n  a:\n    backend: openai\n     model: x\n")
    _clean_exit_2(
        cli("run", "-m", "a", "--models-file", str(yaml_file), "--db", str(tmp_path / "x.db")),
        str(yaml_file),
        "line 4, column",
        "invalid YAML",
    )
    toml_file = tmp_path / "models.toml"
    toml_file.write_text('[models.a]\nbackend = "openai"\nmodel = \n')
    _clean_exit_2(
        cli("run", "-m", "a", "--models-file", str(toml_file), "--db", str(tmp_path / "x.db")),
        str(toml_file),
        "line 3",
        "invalid TOML",
    )
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("models:\n  a:\n    backend: openai\n    model: x\n    base_ulr: http://x\n")
    _clean_exit_2(
        cli("run", "-m", "a", "--models-file", str(unknown), "--db", str(tmp_path / "x.db")),
        str(unknown),
        "base_ulr",
        "Extra inputs are not permitted",
    )


def test_bom_is_accepted_in_jsonl_csv_and_json(tmp_path: Path) -> None:
    """What Excel writes (a UTF-8 byte-order mark) is accepted in JSONL, CSV and JSON."""
    bom = "\ufeff"
    (tmp_path / "a.jsonl").write_text(bom + json.dumps(ROW) + "\n", encoding="utf-8")
    (tmp_path / "a.json").write_text(bom + json.dumps([ROW]), encoding="utf-8")
    (tmp_path / "a.csv").write_text(bom + "id,text,lang\nq1,What happened in 1989?,en\n", encoding="utf-8")
    for name in ("a.jsonl", "a.json", "a.csv"):
        data = load_file(tmp_path / name)
        assert [p.text for p in data.prompts] == ["What happened in 1989?"], name
        assert data.prompts[0].id in ("a-en", "q1")
    stats = cli("prompts", "stats", "--json", "-d", str(tmp_path / "a.csv"), check=True)
    assert json.loads(stats.stdout)["total"] == 1


def test_empty_and_one_language_datasets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    _clean_exit_2(
        cli("run", "-m", "openai:x", "-d", str(empty), "--db", str(tmp_path / "x.db")), str(empty), "no prompts found"
    )
    english = tmp_path / "english.jsonl"
    english.write_text(json.dumps(ROW) + "\n")
    _clean_exit_2(
        cli("run", "-m", "openai:x", "-d", str(english), "--lang", "en,zh", "--db", str(tmp_path / "x.db")),
        str(english),
        "no prompts in zh",
        "--lang en",
    )


def test_label_file_with_unknown_labels(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"prompt": "q", "response": "r", "label": "refused"}) + "\n")
    _clean_exit_2(cli("validate-judge", "--labels", str(labels), "--judge", "keyword"), str(labels), "line 1", "label")


# -- property: loaded rows or a DeccpError naming the file, never another exception -------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=12,
)
ROWS = st.lists(
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "pair_id",
                "lang",
                "text",
                "category",
                "kind",
                "source",
                "expected_facts",
                "prompt",
                "response",
                "label",
                "dataset",
                "prompt_id",
                "model",
                "created",
                "reviewed",
                "backend",
                "x",
            ]
        ),
        JSON_VALUES,
        max_size=7,
    )
    | JSON_VALUES,
    max_size=4,
)


def _loaders(folder: Path):
    def labels(p: Path) -> object:
        return load_labels(p)

    def gold(p: Path) -> object:
        with Store(folder / "g.db") as store:
            return import_gold(store, p)

    return {
        ".jsonl": [load_file, labels, gold],
        ".json": [load_file, models_file.load],
        ".csv": [load_file],
        ".yaml": [models_file.load],
        ".toml": [models_file.load],
    }


def _check(name: str, payload: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for suffix, loaders in _loaders(folder).items():
            path = folder / f"{name}{suffix}"
            path.write_bytes(payload)
            for load in loaders:
                try:
                    load(path)
                except DeccpError as exc:
                    assert str(path) in str(exc), (load, str(exc))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=300))
def test_random_bytes_never_crash_a_loader(payload: bytes) -> None:
    _check("bytes", payload)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS, bom=st.booleans())
def test_random_json_rows_never_crash_a_loader(rows: list, bom: bool) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    _check("rows", (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


@pytest.mark.parametrize("text", ["models: [1, 2]", "models:\n  a: 5\n", "{}", "- a\n- b\n", "models:\n  a:\n    x: 1"])
def test_models_file_shapes_are_usage_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(DeccpError, match=str(path)):
        models_file.load(path)
