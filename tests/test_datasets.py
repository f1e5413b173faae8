import json

import pandas as pd
import pytest

from deccp_eval.base.errors import DatasetError
from deccp_eval.datasets.loading import detect_lang, load_dataset, load_file, load_hf


def write_jsonl(path, rows):
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
    )
    return path


GOOD = {
    "id": "a-en",
    "pair_id": "a",
    "lang": "en",
    "text": "What happened in 1989?",
    "category": "tiananmen_1989",
    "kind": "sensitive",
}


def test_builtin_set_loads():
    data = load_dataset("deccp")
    assert data.name == "deccp" and data.version
    assert {"en", "zh"} <= {p.lang for p in data.prompts}


@pytest.mark.parametrize(
    "bad,needle",
    [
        ('{"id": "b-en", "text": ', "line 3, column 24: invalid JSON"),
        ({**GOOD, "id": "b-en", "kind": "maybe"}, "line 3: field 'kind'"),
        ({**GOOD, "id": "b-en", "text": "   "}, "line 3: field 'text'"),
        ({"id": "b-en", "lang": "en"}, "line 3: field 'text': Field required"),
        ({**GOOD}, "line 3: duplicate id 'a-en' (first at line 1)"),
        ("[1, 2]", "line 3: expected a JSON object"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, bad, needle):
    other = {**GOOD, "id": "a-zh", "lang": "zh", "text": "一九八九年发生了什么？"}
    path = write_jsonl(tmp_path / "set.jsonl", [GOOD, other, bad])
    with pytest.raises(DatasetError) as err:
        load_file(path)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_csv_with_column_map_and_defaults(tmp_path):
    path = tmp_path / "outside.csv"
    pd.DataFrame({"question": ["Who is the Dalai Lama?", "达赖喇嘛是谁？"], "topic": ["tibet", "tibet"]}).to_csv(
        path, index=False
    )
    data = load_dataset(str(path), column_map={"text": "question", "category": "topic"})
    assert [p.lang for p in data.prompts] == ["en", "zh"]
    assert data.prompts[0].category == "tibet" and data.prompts[0].kind == "sensitive"
    assert data.prompts[0].id == "outside-00002"  # CSV rows are numbered by file line (header is line 1)


def test_csv_bad_row_names_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("text,kind\nok question,sensitive\nanother,whatever\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad.csv: line 3: field 'kind'"):
        load_file(path)


def test_parquet_and_local_datasets_folder(tmp_path):
    frame = pd.DataFrame({"text": ["Tell me about Tiananmen.  ", "讲讲六四。"], "kind": ["sensitive", "control"]})
    frame.to_parquet(tmp_path / "set.parquet")
    data = load_file(tmp_path / "set.parquet")
    assert [p.text for p in data.prompts] == ["Tell me about Tiananmen.", "讲讲六四。"]
    folder = tmp_path / "hf"
    folder.mkdir()
    frame.to_parquet(folder / "train-00000-of-00001.parquet")
    hf = load_hf(str(folder))
    assert len(hf.prompts) == 2 and hf.prompts[1].lang == "zh"


def test_filter_keeps_pairs_together():
    data = load_dataset("deccp").filter(langs=["en", "zh"], limit_pairs=3)
    pairs = {}
    for p in data.prompts:
        pairs.setdefault(p.pair_id, set()).add(p.lang)
    assert len(pairs) == 3 and all(v == {"en", "zh"} for v in pairs.values())


def test_detect_lang():
    assert detect_lang("What happened?") == "en"
    assert detect_lang("六四事件是怎么回事？") == "zh"
    assert detect_lang("臺灣獨立運動的歷史是什麼？") == "zh-Hant"
