"""Prompt sets: files (JSONL, CSV, Parquet), `datasets` (hub name or local path), registered names."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from deccp_eval.base import pluginmanager
from deccp_eval.base.errors import DatasetError, validation_problems
from deccp_eval.base.files import parse_json, read_text
from deccp_eval.base.jsonl import read_jsonl
from deccp_eval.base.schema import Prompt

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_TRADITIONAL_ONLY = set("們這說國為會個時來對學還點個後過麼們實現體與從關將戰軍黨亂歷華廣東門區當發臺灣獨義務產運動")


class Dataset(BaseModel):
    name: str
    version: str
    prompts: list[Prompt]
    full_counts: dict[str, int] | None = None  # prompts per language before `filter`: what "complete" means

    def lang_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.prompts:
            counts[p.lang] = counts.get(p.lang, 0) + 1
        return counts

    def filter(
        self,
        langs: Iterable[str] | None = None,
        limit_pairs: int | None = None,
        kinds: Iterable[str] | None = None,
        categories: Iterable[str] | None = None,
    ) -> Dataset:
        """Keep the chosen languages; `limit_pairs` keeps the first N pairs so languages stay matched."""
        rows = self.prompts
        if langs:
            wanted = set(langs)
            rows = [p for p in rows if p.lang in wanted]
        if kinds:
            rows = [p for p in rows if p.kind in set(kinds)]
        if categories:
            rows = [p for p in rows if p.category in set(categories)]
        if limit_pairs is not None:
            keep: list[str] = []
            for p in rows:
                if p.pair_id not in keep:
                    keep.append(p.pair_id)
            chosen = set(keep[:limit_pairs])
            rows = [p for p in rows if p.pair_id in chosen]
        return Dataset(
            name=self.name, version=self.version, prompts=rows, full_counts=self.full_counts or self.lang_counts()
        )


def detect_lang(text: str) -> str:
    """`zh` when the text is mostly CJK, `zh-Hant` when it uses traditional-only characters, else `en`."""
    cjk = _CJK.findall(text)
    if len(cjk) < max(2, len(text.strip()) * 0.2):
        return "en"
    return "zh-Hant" if sum(c in _TRADITIONAL_ONLY for c in cjk) >= 2 else "zh"


RowMapper = Callable[[dict[str, Any], int], dict[str, Any]]


def apply_column_map(row: dict[str, Any], column_map: dict[str, str] | None) -> dict[str, Any]:
    if not column_map:
        return dict(row)
    out = {k: v for k, v in row.items() if k not in column_map.values()}
    for ours, theirs in column_map.items():
        if theirs in row:
            out[ours] = row[theirs]
    return out


def complete_row(row: dict[str, Any], index: int, source: str) -> dict[str, Any]:
    """Fill what public sets leave out: ids from the row number, language from the text."""
    row = {k: v for k, v in row.items() if k in Prompt.model_fields and v is not None}
    text = row.get("text")
    if isinstance(text, str):
        row["text"] = text.strip()
    row.setdefault("id", f"{source}-{index:05d}")
    row["id"] = str(row["id"])
    row.setdefault("pair_id", row["id"])
    row["pair_id"] = str(row["pair_id"])
    if isinstance(text, str) and "lang" not in row:
        row["lang"] = detect_lang(text)
    row.setdefault("category", "uncategorised")
    row.setdefault("kind", "sensitive")
    row.setdefault("source", source)
    facts = row.get("expected_facts")
    if isinstance(facts, str):
        row["expected_facts"] = [facts] if facts else []
    elif facts is not None and hasattr(facts, "tolist"):  # a numpy array from Parquet
        row["expected_facts"] = facts.tolist()
    return row


def _iter_file(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number as a person counts it, row) for each record of the file."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from read_jsonl(path)
    elif suffix == ".json":
        data = parse_json(read_text(path), path)
        rows = data.get("prompts") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise DatasetError(f'{path}: expected a JSON list of prompt objects (or {{"prompts": [...]}})')
        for i, obj in enumerate(rows, start=1):
            if not isinstance(obj, dict):
                raise DatasetError(f"{path}: item {i}: expected a JSON object, got {type(obj).__name__}")
            yield i, obj
    elif suffix == ".csv":
        import csv
        import io

        import pandas as pd

        try:
            frame = pd.read_csv(io.StringIO(read_text(path)), dtype=str, keep_default_na=False)
        except (ValueError, csv.Error) as exc:  # pandas' ParserError and EmptyDataError are ValueErrors
            raise DatasetError(f"{path}: not a readable CSV ({str(exc).strip()})") from None
        for i, obj in enumerate(frame.to_dict(orient="records"), start=2):  # line 1 is the header
            yield i, {str(k): v for k, v in obj.items() if v != ""}
    elif suffix == ".parquet":
        import pandas as pd

        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises its own error types for a damaged file
            raise DatasetError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
        for i, obj in enumerate(frame.to_dict(orient="records"), start=1):
            yield i, obj
    else:
        raise DatasetError(f"{path}: unsupported file type {suffix!r} (use .jsonl, .json, .csv or .parquet)")


def prompts_from_rows(
    rows: Iterable[tuple[int, dict[str, Any]]],
    where: str,
    source: str,
    column_map: dict[str, str] | None = None,
    mapper: RowMapper | None = None,
    unit: str = "line",
) -> list[Prompt]:
    prompts: list[Prompt] = []
    seen: dict[str, int] = {}
    for number, raw in rows:
        row = mapper(raw, number) if mapper else apply_column_map(raw, column_map)
        try:
            prompt = Prompt.model_validate(complete_row(row, number, source))
        except ValidationError as exc:
            raise DatasetError(
                f"{where}: {unit} {number}: {validation_problems(exc, quote=True, whole='row')}"
            ) from None
        if prompt.id in seen:
            raise DatasetError(
                f"{where}: {unit} {number}: duplicate id {prompt.id!r} (first at {unit} {seen[prompt.id]})"
            )
        seen[prompt.id] = number
        prompts.append(prompt)
    if not prompts:
        raise DatasetError(f"{where}: no prompts found")
    return prompts


def file_version(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def require_langs(dataset: Dataset, langs: Iterable[str], where: str) -> None:
    """Fail clearly when nothing is left, or when languages asked for explicitly are missing (a
    one-language set where pairs are expected), instead of a leaderboard that silently lacks one."""
    have = dataset.lang_counts()
    if not have:
        raise DatasetError(f"{where}: no prompts left after --lang/--kind/--category/--limit")
    missing = [lang for lang in langs if lang not in have]
    if missing:
        raise DatasetError(
            f"{where}: no prompts in {', '.join(missing)} (it has {', '.join(sorted(have))}); "
            f"pass --lang {','.join(sorted(have))}"
        )


def load_file(
    path: str | Path, column_map: dict[str, str] | None = None, name: str | None = None, version: str | None = None
) -> Dataset:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    source = name or path.stem
    prompts = prompts_from_rows(
        _iter_file(path), str(path), source, column_map, unit="row" if path.suffix.lower() == ".parquet" else "line"
    )
    return Dataset(name=source, version=version or file_version(path), prompts=prompts)


def load_hf(
    ref: str,
    split: str | None = None,
    column_map: dict[str, str] | None = None,
    mapper: RowMapper | None = None,
    name: str | None = None,
) -> Dataset:
    """A `datasets` hub name or a local dataset folder; every split unless one is named."""
    import datasets as hf_datasets

    try:
        local = Path(ref)
        if local.is_dir() and any((local / f).exists() for f in ("dataset_dict.json", "dataset_info.json")):
            loaded = hf_datasets.load_from_disk(ref)
        else:
            loaded = hf_datasets.load_dataset(ref, split=split)
    except Exception as exc:  # the hub, a bad path, a missing split
        raise DatasetError(f"could not load dataset {ref!r}: {type(exc).__name__}: {exc}") from None
    splits = loaded.items() if isinstance(loaded, hf_datasets.DatasetDict) else [(split or "train", loaded)]
    rows: list[tuple[int, dict[str, Any]]] = []
    for split_name, part in splits:
        if split and split_name != split:
            continue
        for i, row in enumerate(part, start=len(rows) + 1):
            rows.append((i, {**row, "__split__": split_name}))
    source = name or ref.rstrip("/").split("/")[-1]
    prompts = prompts_from_rows(rows, ref, source, column_map, mapper, unit="row")
    version = getattr(next(iter(dict(splits).values()), None), "_fingerprint", None) or "hub"
    return Dataset(name=source, version=str(version)[:12], prompts=prompts)


def parse_column_map(pairs: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        ours, sep, theirs = pair.partition("=")
        if not sep or ours not in Prompt.model_fields:
            raise DatasetError(
                f"--map {pair!r}: expected FIELD=COLUMN with FIELD one of {', '.join(Prompt.model_fields)}"
            )
        out[ours] = theirs
    return out


def load_dataset(ref: str, column_map: dict[str, str] | None = None, split: str | None = None) -> Dataset:
    """A registered name, a file, a local `datasets` folder, or a hub name, in that order."""
    registered = pluginmanager.datasets()
    if ref in registered:
        return registered[ref].obj()
    path = Path(ref)
    if path.is_file():
        return load_file(path, column_map)
    if path.is_dir():
        return load_hf(str(path), split=split, column_map=column_map)
    if ref.count("/") == 1 and not ref.startswith((".", "/")):
        return load_hf(ref, split=split, column_map=column_map)
    known = ", ".join(sorted(registered)) or "none"
    raise DatasetError(f"dataset {ref!r} is not a registered name ({known}), a file, a folder or a hub name")
