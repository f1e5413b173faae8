"""The embedded store: one SQLite file in WAL mode; unique keys make every write idempotent.

Every table and its schema version belong to `migrations` (opening an older store migrates it in one
transaction, a newer one is refused with the version it needs); reads return the typed rows of `rows`.
Workers sharing a store claim requests through the `leases` table before sending them, so no request
is paid for twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deccp_eval.base.degenerate import degenerate, rules_version
from deccp_eval.base.errors import StoreError, UsageError
from deccp_eval.base.schema import GoldReference, Judgment, Prompt, Request, Response
from deccp_eval.store.migrations import migrate, schema_version
from deccp_eval.store.rows import (
    JUDGMENT_COLUMNS,
    RESPONSE_COLUMNS,
    RUN_COLUMNS,
    FactsCache,
    JudgmentRow,
    ResponseRow,
    RunRow,
    VerdictRow,
    judgment_row,
    run_row,
)
from deccp_eval.store.rows import response_row as typed_response_row
from deccp_eval.store.sql import in_chunks, now, use_wal

DEFAULT_DB = Path("results") / "deccp.db"
LEGACY_FINGERPRINT = "unknown (stored before fingerprints)"


RESPONSE_FIELDS = (
    "key, model, dataset, prompt_id, sample, request, text, reasoning, finish_reason, tokens_in, tokens_out, "
    "latency_s, cost, error, created, fingerprint, provider_model, system_fingerprint, degenerate, degenerate_rules"
)
INSERT_RESPONSE = (
    f"INSERT INTO responses ({RESPONSE_FIELDS}) VALUES ({','.join('?' * 20)}) "
    "ON CONFLICT(key) DO UPDATE SET text=excluded.text, reasoning=excluded.reasoning, "
    "finish_reason=excluded.finish_reason, tokens_in=excluded.tokens_in, tokens_out=excluded.tokens_out, "
    "latency_s=excluded.latency_s, cost=excluded.cost, error=excluded.error, created=excluded.created, "
    "fingerprint=excluded.fingerprint, provider_model=excluded.provider_model, "
    "system_fingerprint=excluded.system_fingerprint, degenerate=excluded.degenerate, "
    "degenerate_rules=excluded.degenerate_rules"
)
PROMPT_COLUMNS = "dataset, id, pair_id, lang, text, category, kind, source, expected_facts"


def prompt_row(dataset: str, p: Prompt) -> tuple[Any, ...]:
    """One `prompts` row, in PROMPT_COLUMNS' order."""
    return (
        dataset,
        p.id,
        p.pair_id,
        p.lang,
        p.text,
        p.category,
        p.kind,
        p.source,
        json.dumps(p.expected_facts, ensure_ascii=False),
    )


def response_row(request: Request, dataset: str, response: Response, created: str | None = None) -> tuple[Any, ...]:
    """One `responses` row, in RESPONSE_FIELDS' order (`created`: now unless given). The degenerate
    check (`deccp_eval.base.degenerate`) runs here, so every stored answer has it before any judge; it
    runs again even where `response` carries a reason (one read from a store), as that may be older
    rules' (the row keeps the rules it was decided under)."""
    broken = rules = None
    if response.error is None:
        broken = degenerate(request.text, response.text, response.finish_reason) or ""
        rules = rules_version()
    return (
        response.key,
        request.model,
        dataset,
        request.prompt_id,
        request.sample,
        request.model_dump_json(),
        response.text,
        response.reasoning,
        response.finish_reason,
        response.tokens_in,
        response.tokens_out,
        response.latency_s,
        response.cost,
        response.error,
        created or now(),
        request.fingerprint,
        response.provider_model,
        response.system_fingerprint,
        broken,
        rules,
    )


def latest_judgments(
    store: Store, rows: Sequence[ResponseRow], judge: str | None = None
) -> dict[tuple[str, str], JudgmentRow]:
    """(response key, judge) -> the newest judgment row."""
    out: dict[tuple[str, str], JudgmentRow] = {}
    for j in store.judgments_for([r.key for r in rows], judge):
        out[(j.response_key, j.judge)] = j
    return out


def pick_judge(
    available: Iterable[str], requested: str | None = None, counts: Mapping[str, int] | None = None
) -> str | None:
    """Which judge's verdicts a reader uses (report, compare, review queue, censored list, preference
    sets): the requested one, which must have judgments here (else a UsageError naming those that do),
    else the one that judged most answers (`counts`; ties alphabetical), None when none has."""
    available = sorted(set(available))
    if requested:
        if requested not in available:
            raise UsageError(f"judge {requested!r} has no judgments here; available: {', '.join(available) or 'none'}")
        return requested
    if not available:
        return None
    counts = counts or {}
    return min(available, key=lambda j: (-counts.get(j, 0), j))


class Store:
    def __init__(self, path: str | Path = DEFAULT_DB, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=timeout_s)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the store ({exc})") from None
        self.conn.row_factory = sqlite3.Row
        try:
            use_wal(self.conn, timeout_s)
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self._open_schema()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreError(_explain_open(self.path, exc)) from None

    def _open_schema(self) -> None:
        """Create a fresh store, migrate an older one, or refuse a newer or foreign file (`migrations`);
        then check again the answers whose degenerate reason older rules decided."""
        migrate(self.conn, self.path)
        self.recheck_degenerate()

    def recheck_degenerate(self) -> int:
        """Answers whose degenerate reason was decided under other rules than today's (or before there
        was a check) are checked again and stored with today's rules: a rule change reaches every stored
        answer, once, the next time the store is opened. Returns how many were checked."""
        rules = rules_version()
        # ranges, not !=, so the index on degenerate_rules answers it (a store opens in milliseconds)
        stale = "error IS NULL AND (degenerate_rules IS NULL OR degenerate_rules < ? OR degenerate_rules > ?)"
        (count,) = self.conn.execute(f"SELECT COUNT(*) FROM responses WHERE {stale}", (rules, rules)).fetchone()
        if not count:
            return 0
        from deccp_eval.base.progress import bar

        rows = self.conn.execute(
            f"SELECT key, request, text, finish_reason FROM responses WHERE {stale}", (rules, rules)
        )
        updates = []
        # a few rows take no time: progress only where it takes a while (about a thousand answers a second)
        with bar(
            f"checking {count} stored answers under new degenerate rules", count if count >= 2000 else 0, unit="answers"
        ) as advance:
            for key, request, text, finish in rows:
                question = json.loads(request).get("text", "")
                updates.append((degenerate(question, text, finish) or "", rules, key, rules, rules))
                advance()
        try:
            with self.immediate() as conn:  # a row another process stored meanwhile, under today's rules, is kept
                conn.executemany(
                    f"UPDATE responses SET degenerate=?, degenerate_rules=? WHERE key=? AND {stale}", updates
                )
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc):
                raise
            return 0  # a read-only copy keeps its flags (the leaderboard reads them as stored)
        return count

    def schema_version(self) -> int:
        """0 for an empty file, 1 for a store made before versioning; StoreError for a foreign file."""
        return schema_version(self.conn, self.path)

    @contextmanager
    def immediate(self) -> Iterator[sqlite3.Connection]:
        """One write transaction taken up front (BEGIN IMMEDIATE), so check-then-write is atomic."""
        if self.conn.in_transaction:
            self.conn.commit()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # runs -----------------------------------------------------------------------------------
    def start_run(
        self,
        run_id: str,
        dataset: str,
        version: str,
        models: Sequence[str],
        judges: Sequence[str],
        config: dict[str, Any],
        fingerprints: dict[str, str] | None = None,
    ) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO runs (id, created, dataset, dataset_version, models, judges, config, status, "
                "fingerprints) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    now(),
                    dataset,
                    version,
                    json.dumps(list(models)),
                    json.dumps(list(judges)),
                    json.dumps(config, ensure_ascii=False),
                    "running",
                    json.dumps(fingerprints or {}, sort_keys=True),
                ),
            )

    def finish_run(self, run_id: str, status: str) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET status=? WHERE id=?", (status, run_id))

    def runs(self) -> list[RunRow]:
        return [run_row(t) for t in self._tuples(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY created, rowid")]

    def _tuples(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        """A query whose rows are plain tuples (what the typed rows are built from)."""
        cur = self.conn.cursor()
        cur.row_factory = None
        return cur.execute(sql, args)

    def link(self, run_id: str, keys: Iterable[str]) -> None:
        with self.conn:
            self.conn.executemany(
                "INSERT OR IGNORE INTO run_items (run_id, response_key) VALUES (?,?)", [(run_id, k) for k in keys]
            )

    # prompts --------------------------------------------------------------------------------
    def put_prompts(self, dataset: str, prompts: Iterable[Prompt]) -> None:
        rows = [prompt_row(dataset, p) for p in prompts]
        with self.conn:
            self.conn.executemany(f"INSERT OR REPLACE INTO prompts ({PROMPT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", rows)

    def prompts(self, dataset: str | None = None) -> list[Prompt]:
        args: tuple[str, ...]
        sql, args = "SELECT * FROM prompts", ()
        if dataset:
            sql, args = sql + " WHERE dataset=?", (dataset,)
        return [
            Prompt(
                id=r["id"],
                pair_id=r["pair_id"],
                lang=r["lang"],
                text=r["text"],
                category=r["category"],
                kind=r["kind"],
                source=r["source"] or "",
                expected_facts=json.loads(r["expected_facts"] or "[]"),
            )
            for r in self.conn.execute(sql, args)
        ]

    # responses ------------------------------------------------------------------------------
    def response_status(self, keys: Iterable[str]) -> dict[str, bool]:
        """key -> True when stored without error, False when stored as an error."""
        out: dict[str, bool] = {}
        for marks, chunk in in_chunks(keys):
            for row in self.conn.execute(f"SELECT key, error FROM responses WHERE key IN ({marks})", chunk):
                out[row["key"]] = row["error"] is None
        return out

    def put_response(self, request: Request, dataset: str, response: Response, replace: bool = False) -> bool:
        """Insert, or overwrite a stored error (or anything, with `replace`); True when written.
        Releases this key's lease in the same transaction, so a waiting worker sees the answer."""
        return self.put_responses([(request, dataset, response)], replace) > 0

    def put_responses(self, items: Sequence[tuple[Request, str, Response]], replace: bool = False) -> int:
        """`put_response` for many answers in one transaction (answers and lease releases together);
        returns how many rows were written."""
        return self.write_response_rows([response_row(*item) for item in items], replace)

    def write_response_rows(self, rows: Sequence[tuple[Any, ...]], replace: bool = False) -> int:
        """Rows made by `response_row`, in one transaction with their lease releases."""
        with self.conn:
            before = self.conn.total_changes
            self.conn.executemany(INSERT_RESPONSE + ("" if replace else " WHERE responses.error IS NOT NULL"), rows)
            written = self.conn.total_changes - before
            self.conn.executemany("DELETE FROM leases WHERE key=?", [(row[0],) for row in rows])
        return written

    def put_import(
        self,
        runs: Sequence[dict[str, Any]],
        prompts: Sequence[tuple[str, Prompt]],
        answers: Sequence[tuple[str, Request, Response, str | None]],
        judgments: Sequence[Judgment],
        where: str = "",
    ) -> tuple[int, int, int]:
        """Imported answers (importers.import_file), all or nothing in one transaction: rows already
        stored are kept as they are, so importing a file again writes nothing. `answers` are
        (dataset, request, response, created or None). Returns (new prompts, new answers, new judgments)."""
        counts = [0, 0, 0]
        with self.immediate() as conn:
            for run in runs:
                conn.execute(
                    "INSERT OR IGNORE INTO runs (id, created, dataset, dataset_version, models, judges, config, "
                    "status, fingerprints) VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        run["id"],
                        now(),
                        run["dataset"],
                        run["version"],
                        json.dumps(run["models"]),
                        json.dumps(run["judges"]),
                        json.dumps(run["config"], ensure_ascii=False),
                        "imported",
                        json.dumps(run["fingerprints"], sort_keys=True),
                    ),
                )
            for dataset, p in prompts:
                old = conn.execute(
                    "SELECT text, lang FROM prompts WHERE dataset=? AND id=?", (dataset, p.id)
                ).fetchone()
                if old is not None and (old["text"], old["lang"]) != (p.text, p.lang):
                    raise UsageError(
                        f"{where}: prompt {p.id!r} of dataset {dataset!r} is stored with another text; "
                        "import with --dataset NAME to keep them apart"
                    )
                counts[0] += conn.execute(
                    f"INSERT OR IGNORE INTO prompts ({PROMPT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                    prompt_row(dataset, p),
                ).rowcount
            stamp = now()
            # importing a file again writes nothing (and answers an older import left unchecked were
            # checked when this store was opened: `recheck_degenerate`)
            stored = self.response_status(r.key for _, _, r, _ in answers)
            for dataset, request, r, created in answers:
                if r.key in stored:
                    continue
                row = response_row(request, dataset, r, created or stamp)
                counts[1] += conn.execute(
                    f"INSERT OR IGNORE INTO responses ({RESPONSE_FIELDS}) VALUES ({','.join('?' * len(row))})", row
                ).rowcount
            for run in runs:
                keys = [r.key for d, request, r, _ in answers if d == run["dataset"] and request.model in run["models"]]
                conn.executemany(
                    "INSERT OR IGNORE INTO run_items (run_id, response_key) VALUES (?,?)",
                    [(run["id"], k) for k in keys],
                )
            for j in judgments:
                counts[2] += conn.execute(
                    "INSERT OR IGNORE INTO judgments (key, response_key, judge, template_hash, verdict, rationale, "
                    "parse_status, created, reference_hash, settings_hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        j.key,
                        j.response_key,
                        j.judge,
                        j.template_hash,
                        j.verdict.value if j.verdict else None,
                        j.rationale,
                        j.parse_status.value,
                        stamp,
                        j.reference_hash,
                        j.settings_hash,
                    ),
                ).rowcount
        return counts[0], counts[1], counts[2]

    def get_response(self, key: str) -> Response | None:
        row = self.conn.execute("SELECT * FROM responses WHERE key=?", (key,)).fetchone()
        return _response(row) if row else None

    # leases: several workers on one store ---------------------------------------------------
    def claim(
        self,
        keys: Iterable[str],
        owner: str,
        lease_s: float,
        limit: int,
        since: str,
        redo_errors: bool = False,
        redo_all: bool = False,
        table: str = "responses",
    ) -> list[str]:
        """Lease up to `limit` of `keys` for `owner`, in one BEGIN IMMEDIATE transaction.

        A key is free when no live lease holds it (expired ones are re-taken) and it still needs
        sending: no stored answer, or (with `redo_errors`/`redo_all`) an error/anything stored
        before `since` (the start of this worker's pass), so what another worker wrote meanwhile
        is never sent again. `table="judgments"` leases judgment keys the same way."""
        taken: list[str] = []
        t = time.time()
        with self.immediate():
            for marks, chunk in in_chunks(keys):
                if len(taken) >= limit:
                    break
                leased = {
                    r[0]: r[1]
                    for r in self.conn.execute(
                        f"SELECT key, owner FROM leases WHERE expires > ? AND key IN ({marks})", (t, *chunk)
                    )
                }
                stored = {
                    r[0]: (r[1], r[2])
                    for r in self.conn.execute(
                        f"SELECT key, {_error_col(table)}, created FROM {_table(table)} WHERE key IN ({marks})", chunk
                    )
                }
                for key in chunk:
                    if len(taken) >= limit:
                        break
                    if key in leased and leased[key] != owner:
                        continue
                    if key in stored:
                        error, created = stored[key]
                        if created >= since or not (redo_all or (redo_errors and error is not None)):
                            continue
                    taken.append(key)
            self.conn.executemany(
                "INSERT OR REPLACE INTO leases (key, owner, expires) VALUES (?,?,?)",
                [(k, owner, t + lease_s) for k in taken],
            )
        return taken

    def renew(self, owner: str, lease_s: float) -> int:
        """Extend every lease `owner` holds (the worker's heartbeat); returns how many."""
        with self.conn:
            return self.conn.execute(
                "UPDATE leases SET expires=? WHERE owner=?", (time.time() + lease_s, owner)
            ).rowcount

    def release(self, owner: str) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM leases WHERE owner=?", (owner,))

    def lease_owners(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT DISTINCT owner FROM leases WHERE expires > ?", (time.time(),))}

    def leased_by_others(self, keys: Sequence[str], owner: str) -> set[str]:
        out: set[str] = set()
        t = time.time()
        for marks, chunk in in_chunks(keys):
            out.update(
                r[0]
                for r in self.conn.execute(
                    f"SELECT key FROM leases WHERE expires > ? AND owner != ? AND key IN ({marks})", (t, owner, *chunk)
                )
            )
        return out

    def written_since(self, keys: Sequence[str], since: str, table: str = "responses") -> set[str]:
        out: set[str] = set()
        for marks, chunk in in_chunks(keys):
            out.update(
                r[0]
                for r in self.conn.execute(
                    f"SELECT key FROM {_table(table)} WHERE created >= ? AND key IN ({marks})", (since, *chunk)
                )
            )
        return out

    def stored_status(self, keys: Sequence[str], table: str = "responses") -> dict[str, bool]:
        """key -> True when stored without error (judgments have none), False when an error."""
        if table == "responses":
            return self.response_status(keys)
        return {k: True for k in self.judged_keys(keys)}

    # reading results ------------------------------------------------------------------------
    def response_rows(
        self,
        run_id: str | None = None,
        models: Sequence[str] | None = None,
        dataset: str | None = None,
        required: bool = False,
    ) -> list[ResponseRow]:
        """Responses joined with their prompt and dataset version.

        With `run_id`, that run's responses. Otherwise every stored answer of each model, over all
        runs: per (model, fingerprint, dataset, version, prompt, sample) the newest one, never just
        the latest run. A response's version is that of the newest run that included it. `required`:
        none is a UsageError saying to run first (for readers with nothing to show without answers)."""
        sql = (
            f"SELECT {RESPONSE_COLUMNS}, u.dataset_version, u.created, u.rowid, i.run_id "
            "FROM run_items i JOIN responses r ON r.key = i.response_key JOIN runs u ON u.id = i.run_id "
            "JOIN prompts p ON p.dataset = r.dataset AND p.id = r.prompt_id WHERE 1=1"
        )
        args: list[Any] = []
        if run_id:
            sql += " AND i.run_id = ?"
            args.append(run_id)
        if models:
            sql += f" AND r.model IN ({','.join('?' * len(models))})"
            args.extend(models)
        if dataset:
            sql += " AND r.dataset = ?"
            args.append(dataset)
        facts = FactsCache()
        by_key: dict[str, ResponseRow] = {}
        for values in self._tuples(sql, args):
            row = typed_response_row(values, facts)
            old = by_key.get(row.key)
            if old is None or (row.run_created, row.run_ord) > (old.run_created, old.run_ord):
                by_key[row.key] = row
        newest: dict[tuple[Any, ...], ResponseRow] = {}
        for row in by_key.values():
            slot = (
                (row.model, row.fingerprint, row.dataset, row.dataset_version, row.prompt_id, row.sample)
                if not run_id
                else (row.key,)
            )
            if slot not in newest or row.created > newest[slot].created:
                newest[slot] = row
        out = list(newest.values())
        out.sort(key=lambda r: (r.model, r.pair_id, r.lang, r.sample))
        if required and not out:
            where = f" for run {run_id}" if run_id else ""
            raise UsageError(f"no stored responses{where}: run `deccp-eval run` (or `deccp-eval demo`) first")
        return out

    def response_rows_for_keys(self, keys: Iterable[str]) -> list[ResponseRow]:
        """Stored answers by key with their prompt, wherever they are stored (run columns None)."""
        facts = FactsCache()
        out: list[ResponseRow] = []
        for marks, chunk in in_chunks(dict.fromkeys(keys)):
            sql = (
                f"SELECT {RESPONSE_COLUMNS}, NULL, NULL, NULL, NULL FROM responses r "
                f"JOIN prompts p ON p.dataset = r.dataset AND p.id = r.prompt_id WHERE r.key IN ({marks})"
            )
            out.extend(typed_response_row(values, facts) for values in self._tuples(sql, chunk))
        return out

    def dataset_totals(self, dataset: str, version: str) -> dict[str, int] | None:
        """Prompts per language in (dataset, version) as the runs recorded them; None when unknown."""
        totals: dict[str, int] = {}
        for row in self.conn.execute(
            "SELECT config FROM runs WHERE dataset=? AND dataset_version=?", (dataset, version)
        ):
            for lang, n in (json.loads(row["config"]).get("dataset_counts") or {}).items():
                totals[lang] = max(totals.get(lang, 0), int(n))
        return totals or None

    # judgments ------------------------------------------------------------------------------
    def judged_keys(self, keys: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for marks, chunk in in_chunks(keys):
            out.update(r[0] for r in self.conn.execute(f"SELECT key FROM judgments WHERE key IN ({marks})", chunk))
        return out

    def put_judgment(self, j: Judgment) -> None:
        """Insert or replace; releases the judgment key's lease in the same transaction."""
        with self.conn:
            self.conn.execute("DELETE FROM leases WHERE key=?", (j.key,))
            self.conn.execute(
                "INSERT OR REPLACE INTO judgments (key, response_key, judge, template_hash, verdict, accuracy, "
                "misinformation, rationale, raw, parse_status, members, created, reference_hash, settings_hash, "
                "confidence, decided_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    j.key,
                    j.response_key,
                    j.judge,
                    j.template_hash,
                    j.verdict.value if j.verdict else None,
                    j.accuracy.value if j.accuracy else None,
                    None if j.misinformation is None else int(j.misinformation),
                    j.rationale,
                    j.raw,
                    j.parse_status.value,
                    json.dumps(j.members, ensure_ascii=False) if j.members is not None else None,
                    now(),
                    j.reference_hash,
                    j.settings_hash,
                    j.confidence,
                    j.decided_by,
                ),
            )

    def judgments_for(self, response_keys: Sequence[str], judge: str | None = None) -> list[JudgmentRow]:
        """The judgments of these answers (of `judge` only, when given), oldest first."""
        out: list[JudgmentRow] = []
        for marks, chunk in in_chunks(response_keys):
            sql = f"SELECT {JUDGMENT_COLUMNS} FROM judgments WHERE response_key IN ({marks})"
            args: list[Any] = list(chunk)
            if judge:
                sql += " AND judge = ?"
                args.append(judge)
            out.extend(map(judgment_row, self._tuples(sql + " ORDER BY created, rowid", args)))
        return out

    def verdicts_of(self, judge: str) -> list[VerdictRow]:
        """Every parsed verdict of `judge` with its answer and question, oldest first (all stored answers)."""
        sql = (
            "SELECT j.verdict, r.text, p.text, p.lang, p.pair_id FROM judgments j "
            "JOIN responses r ON r.key = j.response_key "
            "JOIN prompts p ON p.dataset = r.dataset AND p.id = r.prompt_id "
            "WHERE j.judge = ? AND j.verdict IS NOT NULL AND j.parse_status = 'ok' ORDER BY j.created, j.rowid"
        )
        return [VerdictRow._make(t) for t in self._tuples(sql, (judge,))]

    # gold references ------------------------------------------------------------------------
    def put_gold(self, dataset: str, ref: GoldReference, keep_reviewed: bool = True) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO gold (dataset, prompt_id, model, sample, text, created, template_hash, reviewed) "
                "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(dataset, prompt_id, model, sample) DO UPDATE SET "
                "text=excluded.text, created=excluded.created, template_hash=excluded.template_hash, "
                "reviewed=" + ("MAX(gold.reviewed, excluded.reviewed)" if keep_reviewed else "excluded.reviewed"),
                (
                    dataset,
                    ref.prompt_id,
                    ref.model,
                    ref.sample,
                    ref.text,
                    ref.created,
                    ref.template_hash,
                    int(ref.reviewed),
                ),
            )

    def gold(self, dataset: str | None = None) -> Iterator[tuple[str, GoldReference]]:
        args: tuple[str, ...]
        sql, args = "SELECT * FROM gold", ()
        if dataset:
            sql, args = sql + " WHERE dataset=?", (dataset,)
        for r in self.conn.execute(sql + " ORDER BY dataset, prompt_id, model, sample", args):
            yield (
                r["dataset"],
                GoldReference(
                    prompt_id=r["prompt_id"],
                    model=r["model"],
                    text=r["text"],
                    created=r["created"],
                    template_hash=r["template_hash"],
                    sample=r["sample"],
                    reviewed=bool(r["reviewed"]),
                ),
            )


def _table(table: str) -> str:
    if table not in ("responses", "judgments"):
        raise ValueError(f"no lease table {table!r}")
    return table


def _error_col(table: str) -> str:
    return "error" if _table(table) == "responses" else "NULL"


def _explain_open(path: Path, exc: sqlite3.DatabaseError) -> str:
    msg = str(exc)
    if "not a database" in msg or "malformed" in msg:
        return f"{path} is not a deccp-eval store (not an SQLite database: {msg}); pass another --db"
    if "locked" in msg or "busy" in msg:
        return f"{path} is locked by another process ({msg}); try again when it finishes"
    return f"{path}: cannot read the store ({msg})"


def _response(row: sqlite3.Row) -> Response:
    return Response(
        key=row["key"],
        text=row["text"] or "",
        reasoning=row["reasoning"],
        finish_reason=row["finish_reason"],
        tokens_in=row["tokens_in"],
        tokens_out=row["tokens_out"],
        latency_s=row["latency_s"],
        cost=row["cost"],
        error=row["error"],
        provider_model=row["provider_model"],
        system_fingerprint=row["system_fingerprint"],
        degenerate=row["degenerate"],
    )
