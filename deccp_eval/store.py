"""The embedded store: one SQLite file in WAL mode; unique keys make every write idempotent."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from deccp_eval.batch_store import create_tables as create_batch_tables
from deccp_eval.schema import GoldReference, Judgment, Prompt, Request, Response

DEFAULT_DB = Path("results") / "deccp.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, dataset TEXT NOT NULL, dataset_version TEXT NOT NULL,
    models TEXT NOT NULL, judges TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS prompts (
    dataset TEXT NOT NULL, id TEXT NOT NULL, pair_id TEXT NOT NULL, lang TEXT NOT NULL, text TEXT NOT NULL,
    category TEXT NOT NULL, kind TEXT NOT NULL, source TEXT, expected_facts TEXT,
    PRIMARY KEY (dataset, id)
);
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, dataset TEXT NOT NULL, prompt_id TEXT NOT NULL,
    sample INTEGER NOT NULL, request TEXT NOT NULL, text TEXT, reasoning TEXT, finish_reason TEXT,
    tokens_in INTEGER, tokens_out INTEGER, latency_s REAL, cost REAL, error TEXT, created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_model ON responses (model, dataset);
CREATE TABLE IF NOT EXISTS run_items (
    run_id TEXT NOT NULL, response_key TEXT NOT NULL, PRIMARY KEY (run_id, response_key)
);
CREATE TABLE IF NOT EXISTS judgments (
    key TEXT PRIMARY KEY, response_key TEXT NOT NULL, judge TEXT NOT NULL, template_hash TEXT NOT NULL,
    verdict TEXT, accuracy TEXT, misinformation INTEGER, rationale TEXT, raw TEXT,
    parse_status TEXT NOT NULL, members TEXT, created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS judgments_response ON judgments (response_key);
CREATE TABLE IF NOT EXISTS gold (
    dataset TEXT NOT NULL, prompt_id TEXT NOT NULL, model TEXT NOT NULL, sample INTEGER NOT NULL,
    text TEXT NOT NULL, created TEXT NOT NULL, template_hash TEXT NOT NULL, reviewed INTEGER NOT NULL,
    PRIMARY KEY (dataset, prompt_id, model, sample)
);
"""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")



def in_chunks(keys: Iterable[str], size: int = 500) -> Iterator[tuple[str, list[str]]]:
    """(`?,?,...` placeholders, keys) per chunk, so an `IN (...)` query stays under SQLite's variable limit."""
    items = list(keys)
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        yield ",".join("?" * len(chunk)), chunk

class Store:
    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=30.0)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        add_judgment_columns(self.conn)
        create_batch_tables(self.conn)  # batch_store.py: the batch ids of issue 18
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # runs -----------------------------------------------------------------------------------
    def start_run(self, run_id: str, dataset: str, version: str, models: Sequence[str],
                  judges: Sequence[str], config: dict[str, Any]) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO runs VALUES (?,?,?,?,?,?,?,?)",
                (run_id, now(), dataset, version, json.dumps(list(models)), json.dumps(list(judges)),
                 json.dumps(config, ensure_ascii=False), "running"),
            )

    def finish_run(self, run_id: str, status: str) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET status=? WHERE id=?", (status, run_id))

    def runs(self) -> list[sqlite3.Row]:
        return list(self.conn.execute("SELECT * FROM runs ORDER BY created, rowid"))

    def link(self, run_id: str, keys: Iterable[str]) -> None:
        with self.conn:
            self.conn.executemany("INSERT OR IGNORE INTO run_items VALUES (?,?)", [(run_id, k) for k in keys])

    # prompts --------------------------------------------------------------------------------
    def put_prompts(self, dataset: str, prompts: Iterable[Prompt]) -> None:
        rows = [(dataset, p.id, p.pair_id, p.lang, p.text, p.category, p.kind, p.source,
                 json.dumps(p.expected_facts, ensure_ascii=False)) for p in prompts]
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO prompts VALUES (?,?,?,?,?,?,?,?,?)", rows)

    def prompts(self, dataset: str | None = None) -> list[Prompt]:
        sql, args = "SELECT * FROM prompts", ()
        if dataset:
            sql, args = sql + " WHERE dataset=?", (dataset,)
        return [Prompt(id=r["id"], pair_id=r["pair_id"], lang=r["lang"], text=r["text"], category=r["category"],
                       kind=r["kind"], source=r["source"] or "", expected_facts=json.loads(r["expected_facts"] or "[]"))
                for r in self.conn.execute(sql, args)]

    # responses ------------------------------------------------------------------------------
    def response_status(self, keys: Iterable[str]) -> dict[str, bool]:
        """key -> True when stored without error, False when stored as an error."""
        out: dict[str, bool] = {}
        for marks, chunk in in_chunks(keys):
            for row in self.conn.execute(f"SELECT key, error FROM responses WHERE key IN ({marks})", chunk):
                out[row["key"]] = row["error"] is None
        return out

    def put_response(self, request: Request, dataset: str, response: Response, replace: bool = False) -> bool:
        """Insert, or overwrite a stored error (or anything, with `replace`); True when written."""
        cond = "" if replace else " WHERE responses.error IS NOT NULL"
        cur = self.conn.execute(
            "INSERT INTO responses VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(key) DO UPDATE SET text=excluded.text, reasoning=excluded.reasoning, "
            "finish_reason=excluded.finish_reason, tokens_in=excluded.tokens_in, tokens_out=excluded.tokens_out, "
            "latency_s=excluded.latency_s, cost=excluded.cost, error=excluded.error, created=excluded.created" + cond,
            (response.key, request.model, dataset, request.prompt_id, request.sample,
             request.model_dump_json(), response.text, response.reasoning, response.finish_reason,
             response.tokens_in, response.tokens_out, response.latency_s, response.cost, response.error, now()),
        )
        self.conn.commit()
        return cur.rowcount > 0

    def get_response(self, key: str) -> Response | None:
        row = self.conn.execute("SELECT * FROM responses WHERE key=?", (key,)).fetchone()
        return _response(row) if row else None

    def latest_runs(self) -> dict[tuple[str, str], str]:
        """(model, dataset) -> the id of the newest run that included it."""
        sql = ("SELECT r.model, r.dataset, i.run_id, u.created, u.rowid AS ord FROM run_items i "
               "JOIN responses r ON r.key = i.response_key JOIN runs u ON u.id = i.run_id "
               "GROUP BY r.model, r.dataset, i.run_id")
        best: dict[tuple[str, str], tuple[str, int, str]] = {}
        for row in self.conn.execute(sql):
            key, rank = (row["model"], row["dataset"]), (row["created"], row["ord"], row["run_id"])
            if key not in best or rank > best[key]:
                best[key] = rank
        return {k: v[2] for k, v in best.items()}

    def response_rows(self, run_id: str | None = None, models: Sequence[str] | None = None,
                      dataset: str | None = None) -> list[sqlite3.Row]:
        """Responses joined with their prompt: one run's, or each model's latest run's."""
        if run_id:
            scopes = [(run_id, None, None)]
        else:
            scopes = [(rid, m, d) for (m, d), rid in self.latest_runs().items()]
        out: list[sqlite3.Row] = []
        for rid, model, ds in scopes:
            sql = ("SELECT r.*, p.lang, p.pair_id, p.category, p.kind, p.text AS prompt_text, p.expected_facts "
                   "FROM run_items i JOIN responses r ON r.key = i.response_key "
                   "JOIN prompts p ON p.dataset = r.dataset AND p.id = r.prompt_id WHERE i.run_id = ?")
            args: list[Any] = [rid]
            if model is not None:
                sql += " AND r.model = ? AND r.dataset = ?"
                args += [model, ds]
            if models:
                sql += f" AND r.model IN ({','.join('?' * len(models))})"
                args.extend(models)
            if dataset:
                sql += " AND r.dataset = ?"
                args.append(dataset)
            out.extend(self.conn.execute(sql, args))
        out.sort(key=lambda r: (r["model"], r["pair_id"], r["lang"], r["sample"]))
        return out

    # judgments ------------------------------------------------------------------------------
    def judged_keys(self, keys: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for marks, chunk in in_chunks(keys):
            out.update(r[0] for r in self.conn.execute(f"SELECT key FROM judgments WHERE key IN ({marks})", chunk))
        return out

    def put_judgment(self, j: Judgment) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO judgments (key, response_key, judge, template_hash, verdict, accuracy, "
            "misinformation, rationale, raw, parse_status, members, created, confidence, decided_by) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (j.key, j.response_key, j.judge, j.template_hash, j.verdict.value if j.verdict else None,
             j.accuracy.value if j.accuracy else None,
             None if j.misinformation is None else int(j.misinformation), j.rationale, j.raw,
             j.parse_status.value, json.dumps(j.members, ensure_ascii=False) if j.members is not None else None, now(),
             j.confidence, j.decided_by),
        )
        self.conn.commit()

    def judgments_for(self, response_keys: Sequence[str], judge: str | None = None) -> list[sqlite3.Row]:
        out: list[sqlite3.Row] = []
        for marks, chunk in in_chunks(response_keys):
            sql = f"SELECT * FROM judgments WHERE response_key IN ({marks})"
            args: list[Any] = list(chunk)
            if judge:
                sql += " AND judge = ?"
                args.append(judge)
            out.extend(self.conn.execute(sql + " ORDER BY created, rowid", args))
        return out

    # gold references ------------------------------------------------------------------------
    def put_gold(self, dataset: str, ref: GoldReference, keep_reviewed: bool = True) -> None:
        self.conn.execute(
            "INSERT INTO gold VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(dataset, prompt_id, model, sample) DO UPDATE SET "
            "text=excluded.text, created=excluded.created, template_hash=excluded.template_hash, "
            "reviewed=" + ("MAX(gold.reviewed, excluded.reviewed)" if keep_reviewed else "excluded.reviewed"),
            (dataset, ref.prompt_id, ref.model, ref.sample, ref.text, ref.created, ref.template_hash, int(ref.reviewed)),
        )
        self.conn.commit()

    def gold(self, dataset: str | None = None) -> Iterator[tuple[str, GoldReference]]:
        sql, args = "SELECT * FROM gold", ()
        if dataset:
            sql, args = sql + " WHERE dataset=?", (dataset,)
        for r in self.conn.execute(sql + " ORDER BY dataset, prompt_id, model, sample", args):
            yield r["dataset"], GoldReference(prompt_id=r["prompt_id"], model=r["model"], text=r["text"],
                                              created=r["created"], template_hash=r["template_hash"],
                                              sample=r["sample"], reviewed=bool(r["reviewed"]))


JUDGMENT_COLUMNS = {"confidence": "REAL", "decided_by": "TEXT"}


def add_judgment_columns(conn: sqlite3.Connection) -> None:
    """Judgment confidence and the deciding member (issue 14): added to stores made before them."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(judgments)")}
    for name, kind in JUDGMENT_COLUMNS.items():
        if name not in have:
            conn.execute(f"ALTER TABLE judgments ADD COLUMN {name} {kind}")


def _response(row: sqlite3.Row) -> Response:
    return Response(key=row["key"], text=row["text"] or "", reasoning=row["reasoning"],
                    finish_reason=row["finish_reason"], tokens_in=row["tokens_in"], tokens_out=row["tokens_out"],
                    latency_s=row["latency_s"], cost=row["cost"], error=row["error"])
