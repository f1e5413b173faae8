"""Store schema versions: an old store migrates, a foreign, newer, damaged or locked file is a clear error."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA, cli

from deccp_eval.analysis import leaderboard
from deccp_eval.base.errors import StoreError
from deccp_eval.base.schema import Request, Response
from deccp_eval.store import migrations, review_state
from deccp_eval.store.batches import BatchState
from deccp_eval.store.db import LEGACY_FINGERPRINT, Store
from deccp_eval.store.migrations import SCHEMA_VERSION
from deccp_eval.store.rows import JudgmentRow, ResponseRow, RunRow

FIXTURE = DATA / "store-v1.db"  # made by main at b14a913 (before versioning): 1 run of 6 prompts, 4 gold


def _copy(tmp_path: Path) -> Path:
    db = tmp_path / "old.db"
    shutil.copy(FIXTURE, db)
    return db


def test_fixture_is_a_version_1_store() -> None:
    con = sqlite3.connect(FIXTURE)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "schema_version" not in tables and "leases" not in tables
    assert con.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 10


def test_old_store_is_migrated_and_keeps_its_results(tmp_path: Path) -> None:
    db = _copy(tmp_path)
    with Store(db) as store:
        assert store.schema_version() == SCHEMA_VERSION
        rows = leaderboard.compute(store)
        assert {(r["model"], r["lang"], r["n"]) for r in rows} == {
            ("openai:fake-model", "en", 3),
            ("openai:fake-model", "zh", 3),
        }
        assert {r["model_fingerprint"] for r in rows} == {LEGACY_FINGERPRINT}
        assert {r["complete"] for r in rows} == {None}  # the old run did not record the dataset's size
        assert len(list(store.gold("deccp"))) == 4
        # new writes work on the migrated file, with the new columns
        req = Request(model="x:y", fingerprint="fp1", prompt_id="p", text="hi")
        assert store.put_response(req, "d", Response(key=req.key, text="ok", system_fingerprint="fp_abc"))
        assert store.get_response(req.key).system_fingerprint == "fp_abc"
    con = sqlite3.connect(db)
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    cols = {r[1] for r in con.execute("PRAGMA table_info(responses)")}
    assert {"fingerprint", "provider_model", "system_fingerprint"} <= cols
    with Store(db) as store:  # opening again is a no-op
        assert store.schema_version() == SCHEMA_VERSION


def test_leaderboard_command_reads_an_old_store(tmp_path: Path) -> None:
    db = _copy(tmp_path)
    proc = cli("leaderboard", "--db", str(db), "--out", str(tmp_path / "lb.csv"))
    assert proc.returncode == 0, proc.stderr
    assert "openai:fake-model" in proc.stdout


def test_newer_store_is_refused_with_the_version_it_needs(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    Store(db).close()
    con = sqlite3.connect(db)
    con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 5,))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 5}.*up to version {SCHEMA_VERSION}"):
        Store(db)
    proc = cli("leaderboard", "--db", str(db))
    assert proc.returncode == 2 and "upgrade deccp-eval" in proc.stderr and "Traceback" not in proc.stderr


def test_foreign_files_are_clear_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("these are my notes, not a database\n" * 100)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    con.commit()
    con.close()
    for path, expected in (
        (text, "not an SQLite database"),
        (other, "not a deccp-eval store (it has tables customers"),
    ):
        with pytest.raises(StoreError, match=r"not"):
            Store(path)
        proc = cli("leaderboard", "--db", str(path))
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr and str(path) in proc.stderr and "Traceback" not in proc.stderr
    assert text.read_text().startswith("these are my notes")  # untouched


def test_locked_store_is_a_clear_error(tmp_path: Path) -> None:
    db = _copy(tmp_path)  # needs a migration, i.e. a write lock
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked by another process"):
            Store(db, timeout_s=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Store(db) as store:
        assert store.schema_version() == SCHEMA_VERSION


# Run in a fresh interpreter: forking the test worker itself could copy a lock held by a thread another
# test left running, and hang a child.
OPEN_TOGETHER = """
import multiprocessing, sys
from deccp_eval.store.batches import BatchState
from deccp_eval.store.db import Store

def open_five_times(path, barrier):
    barrier.wait()
    for _ in range(5):
        Store(path).close()
        BatchState(path).close()

if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    failed = 0
    for i in range(int(sys.argv[2])):
        barrier = ctx.Barrier(6)
        procs = [ctx.Process(target=open_five_times, args=(f"{sys.argv[1]}/{i}.db", barrier)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
        failed += sum(p.exitcode != 0 for p in procs)
    print(f"failed={failed}")
"""


def test_processes_opening_one_fresh_store_together_all_get_in(tmp_path: Path) -> None:
    """Six processes opening a new store at once: SQLite refuses WAL at once ("database is locked",
    no busy wait) to one that collides with another creating or closing the file. Before the store
    waited that out, three runs of 20 rounds lost 5, 0 and 4 processes, and 60 rounds lost 14 (3 `run`
    workers failed the same way in CI)."""
    script = tmp_path / "open_together.py"
    script.write_text(OPEN_TOGETHER)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path), "60"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0 and "failed=0" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    with Store(tmp_path / "0.db") as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# The schema of a store written by deccp-eval before every table came under `migrations` (schema
# version 4), run literally: core tables, plus the batch and review tables their modules created on use.
V4_CORE = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE runs (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, dataset TEXT NOT NULL, dataset_version TEXT NOT NULL,
    models TEXT NOT NULL, judges TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL,
    fingerprints TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE prompts (
    dataset TEXT NOT NULL, id TEXT NOT NULL, pair_id TEXT NOT NULL, lang TEXT NOT NULL, text TEXT NOT NULL,
    category TEXT NOT NULL, kind TEXT NOT NULL, source TEXT, expected_facts TEXT,
    PRIMARY KEY (dataset, id)
);
CREATE TABLE responses (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, dataset TEXT NOT NULL, prompt_id TEXT NOT NULL,
    sample INTEGER NOT NULL, request TEXT NOT NULL, text TEXT, reasoning TEXT, finish_reason TEXT,
    tokens_in INTEGER, tokens_out INTEGER, latency_s REAL, cost REAL, error TEXT, created TEXT NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT '', provider_model TEXT, system_fingerprint TEXT, degenerate TEXT
);
CREATE INDEX responses_model ON responses (model, dataset);
CREATE TABLE run_items (run_id TEXT NOT NULL, response_key TEXT NOT NULL, PRIMARY KEY (run_id, response_key));
CREATE TABLE judgments (
    key TEXT PRIMARY KEY, response_key TEXT NOT NULL, judge TEXT NOT NULL, template_hash TEXT NOT NULL,
    verdict TEXT, accuracy TEXT, misinformation INTEGER, rationale TEXT, raw TEXT,
    parse_status TEXT NOT NULL, members TEXT, created TEXT NOT NULL,
    reference_hash TEXT NOT NULL DEFAULT '', settings_hash TEXT NOT NULL DEFAULT '',
    confidence REAL, decided_by TEXT
);
CREATE INDEX judgments_response ON judgments (response_key);
CREATE TABLE gold (
    dataset TEXT NOT NULL, prompt_id TEXT NOT NULL, model TEXT NOT NULL, sample INTEGER NOT NULL,
    text TEXT NOT NULL, created TEXT NOT NULL, template_hash TEXT NOT NULL, reviewed INTEGER NOT NULL,
    PRIMARY KEY (dataset, prompt_id, model, sample)
);
CREATE TABLE leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL);
INSERT INTO schema_version VALUES (4);
INSERT INTO runs VALUES ('run1', '2026-01-01T00:00:00', 'deccp', '1.0.0', '["openai:m"]', '["keyword"]',
                         '{"command": "deccp-eval run"}', 'done', '{"openai:m": "fp1"}');
INSERT INTO prompts VALUES ('deccp', 'p1-en', 'p1', 'en', 'What happened in 1989?', 'tiananmen', 'sensitive', '',
                            '["Troops fired on protesters in Beijing"]');
INSERT INTO responses (key, model, dataset, prompt_id, sample, request, text, created, fingerprint, degenerate)
    VALUES ('k1', 'openai:m', 'deccp', 'p1-en', 0, '{}', 'I cannot discuss that.', '2026-01-01T00:00:01', 'fp1', '');
INSERT INTO run_items VALUES ('run1', 'k1');
INSERT INTO judgments (key, response_key, judge, template_hash, verdict, misinformation, parse_status, members,
                       created, confidence)
    VALUES ('j1', 'k1', 'keyword', 't', 'refusal', 0, 'ok', '[{"judge": "a"}]', '2026-01-01T00:00:02', 0.9);
"""
V4_BATCHES = """
CREATE TABLE batches (
    id TEXT PRIMARY KEY, spec TEXT NOT NULL, status TEXT NOT NULL, n_requests INTEGER NOT NULL,
    completed INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0, finished INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL, message TEXT, created TEXT NOT NULL, updated TEXT NOT NULL
);
CREATE TABLE batch_lines (
    batch_id TEXT NOT NULL, key TEXT NOT NULL, request TEXT NOT NULL, state TEXT NOT NULL,
    result TEXT, error TEXT, delivered INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (batch_id, key)
);
CREATE INDEX batch_lines_key ON batch_lines (key);
INSERT INTO batches (id, spec, status, n_requests, options, created, updated)
    VALUES ('batch_1', 'openai:m', 'in_progress', 1, '{}', '2026-01-01', '2026-01-01');
INSERT INTO batch_lines (batch_id, key, request, state) VALUES ('batch_1', 'k2', '{}', 'pending');
"""
V4_REVIEW = """
CREATE TABLE review_labels (
    reviewer TEXT NOT NULL, response_key TEXT NOT NULL, verdict TEXT NOT NULL, accuracy TEXT,
    misinformation INTEGER, note TEXT NOT NULL DEFAULT '', created TEXT NOT NULL, updated TEXT NOT NULL,
    PRIMARY KEY (reviewer, response_key)
);
CREATE INDEX review_labels_response ON review_labels (response_key);
CREATE TABLE review_gold_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, dataset TEXT NOT NULL, prompt_id TEXT NOT NULL, model TEXT,
    sample INTEGER, reviewer TEXT NOT NULL, action TEXT NOT NULL, note TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL
);
CREATE INDEX review_gold_log_prompt ON review_gold_log (dataset, prompt_id);
INSERT INTO review_labels VALUES ('alice', 'k1', 'refusal', NULL, NULL, 'clear', '2026-01-02', '2026-01-02');
"""


def _columns(db: Path) -> dict[str, list[tuple]]:
    """Every table's columns (name, type, not null, default, primary key) and every index, by name."""
    con = sqlite3.connect(db)
    names = [
        r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
    ]
    out = {t: sorted(tuple(c[1:]) for c in con.execute(f"PRAGMA table_info({t})")) for t in names}
    out["indexes"] = sorted(
        r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index' AND name NOT LIKE 'sqlite_%'")
    )
    con.close()
    return out


def _v4_store(path: Path, *parts: str) -> Path:
    con = sqlite3.connect(path)
    con.executescript("".join(parts))
    con.close()
    return path


@pytest.mark.parametrize("parts", [(V4_CORE,), (V4_CORE, V4_BATCHES, V4_REVIEW)], ids=["core-only", "all-tables"])
def test_a_version_4_store_opens_migrated_with_its_rows_typed(tmp_path: Path, parts: tuple[str, ...]) -> None:
    db = _v4_store(tmp_path / "v4.db", *parts)
    with Store(db) as store:
        assert store.schema_version() == SCHEMA_VERSION == 6
        (row,) = store.response_rows()
        assert isinstance(row, ResponseRow) and row.expected_facts == ("Troops fired on protesters in Beijing",)
        assert (row.text, row.dataset_version, row.run_id) == ("I cannot discuss that.", "1.0.0", "run1")
        assert row["lang"] == row.lang == "en"  # by name too, as code written against sqlite3.Row reads it
        (j,) = store.judgments_for(["k1"])
        assert isinstance(j, JudgmentRow)
        assert (j.verdict, j.misinformation, j.members, j.confidence) == ("refusal", False, [{"judge": "a"}], 0.9)
        (run,) = store.runs()
        assert isinstance(run, RunRow) and run.config == {"command": "deccp-eval run"}
        assert (run.models, run.fingerprints) == (["openai:m"], {"openai:m": "fp1"})
        labels = review_state.labels(store.conn)
        assert [(x.reviewer, x.note) for x in labels] == ([("alice", "clear")] if len(parts) > 1 else [])
    state = BatchState(db)
    try:
        assert [b.id for b in state.batches()] == (["batch_1"] if len(parts) > 1 else [])
    finally:
        state.close()
    fresh = tmp_path / "fresh.db"
    Store(fresh).close()
    assert _columns(db) == _columns(fresh)  # migrated: the same tables, columns and indexes as a new store


def test_every_migration_path_ends_at_the_fresh_schema(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    Store(fresh).close()
    migrated = _copy(tmp_path)  # version 1
    Store(migrated).close()
    assert _columns(migrated) == _columns(fresh)
    assert [v for v, _ in migrations.MIGRATIONS] == list(range(2, SCHEMA_VERSION + 1))


def test_batch_state_on_a_new_file_creates_the_whole_store(tmp_path: Path) -> None:
    db = tmp_path / "batches.db"
    BatchState(db).close()
    with Store(db) as store:
        assert store.schema_version() == SCHEMA_VERSION
    fresh = tmp_path / "fresh.db"
    Store(fresh).close()
    assert _columns(db) == _columns(fresh)
