"""Store schema versions: an old store migrates, a foreign, newer, damaged or locked file is a clear error."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import DATA, cli
from deccp_eval.analysis import leaderboard
from deccp_eval.base.errors import StoreError
from deccp_eval.base.schema import Request, Response
from deccp_eval.store.db import LEGACY_FINGERPRINT, SCHEMA_VERSION, Store

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
        assert {(r["model"], r["lang"], r["n"]) for r in rows} == {("openai:fake-model", "en", 3),
                                                                   ("openai:fake-model", "zh", 3)}
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
    for path, expected in ((text, "not an SQLite database"), (other, "not a deccp-eval store (it has tables customers")):
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
