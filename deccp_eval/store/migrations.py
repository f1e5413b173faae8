"""Every table of the store file, and the one path that creates or upgrades them.

The file carries its schema version in the `schema_version` table (a store made before versioning
has none and counts as version 1). `migrate` creates a fresh store at `SCHEMA_VERSION`, brings an
older one up by running `MIGRATIONS` in order, in one BEGIN IMMEDIATE transaction (one process
migrates; the others wait, then see the new version), and refuses a newer or foreign file. A new
column or table is one more numbered step at the end of `MIGRATIONS` plus the same change in
`SCHEMA`; never edit a step that has shipped.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from deccp_eval.base.errors import StoreError

SCHEMA_VERSION = 6

# The whole schema at SCHEMA_VERSION (SCHEMA, below): what a fresh store is created with.
CORE_TABLES = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, dataset TEXT NOT NULL, dataset_version TEXT NOT NULL,
    models TEXT NOT NULL, judges TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL,
    fingerprints TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS prompts (
    dataset TEXT NOT NULL, id TEXT NOT NULL, pair_id TEXT NOT NULL, lang TEXT NOT NULL, text TEXT NOT NULL,
    category TEXT NOT NULL, kind TEXT NOT NULL, source TEXT, expected_facts TEXT,
    PRIMARY KEY (dataset, id)
);
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, dataset TEXT NOT NULL, prompt_id TEXT NOT NULL,
    sample INTEGER NOT NULL, request TEXT NOT NULL, text TEXT, reasoning TEXT, finish_reason TEXT,
    tokens_in INTEGER, tokens_out INTEGER, latency_s REAL, cost REAL, error TEXT, created TEXT NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT '', provider_model TEXT, system_fingerprint TEXT, degenerate TEXT,
    degenerate_rules TEXT
);
CREATE INDEX IF NOT EXISTS responses_model ON responses (model, dataset);
CREATE INDEX IF NOT EXISTS responses_degenerate_rules ON responses (degenerate_rules);
CREATE TABLE IF NOT EXISTS run_items (
    run_id TEXT NOT NULL, response_key TEXT NOT NULL, PRIMARY KEY (run_id, response_key)
);
CREATE TABLE IF NOT EXISTS judgments (
    key TEXT PRIMARY KEY, response_key TEXT NOT NULL, judge TEXT NOT NULL, template_hash TEXT NOT NULL,
    verdict TEXT, accuracy TEXT, misinformation INTEGER, rationale TEXT, raw TEXT,
    parse_status TEXT NOT NULL, members TEXT, created TEXT NOT NULL,
    reference_hash TEXT NOT NULL DEFAULT '', settings_hash TEXT NOT NULL DEFAULT '',
    confidence REAL, decided_by TEXT
);
CREATE INDEX IF NOT EXISTS judgments_response ON judgments (response_key);
CREATE TABLE IF NOT EXISTS gold (
    dataset TEXT NOT NULL, prompt_id TEXT NOT NULL, model TEXT NOT NULL, sample INTEGER NOT NULL,
    text TEXT NOT NULL, created TEXT NOT NULL, template_hash TEXT NOT NULL, reviewed INTEGER NOT NULL,
    PRIMARY KEY (dataset, prompt_id, model, sample)
);
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL
);
"""
# provider batches (store.batches)
BATCH_TABLES = """
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, spec TEXT NOT NULL, status TEXT NOT NULL, n_requests INTEGER NOT NULL,
    completed INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0, finished INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL, message TEXT, created TEXT NOT NULL, updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_lines (
    batch_id TEXT NOT NULL, key TEXT NOT NULL, request TEXT NOT NULL, state TEXT NOT NULL,
    result TEXT, error TEXT, delivered INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (batch_id, key)
);
CREATE INDEX IF NOT EXISTS batch_lines_key ON batch_lines (key);
"""
# human review (store.review_state)
REVIEW_TABLES = """
CREATE TABLE IF NOT EXISTS review_labels (
    reviewer TEXT NOT NULL, response_key TEXT NOT NULL, verdict TEXT NOT NULL, accuracy TEXT,
    misinformation INTEGER, note TEXT NOT NULL DEFAULT '', created TEXT NOT NULL, updated TEXT NOT NULL,
    PRIMARY KEY (reviewer, response_key)
);
CREATE INDEX IF NOT EXISTS review_labels_response ON review_labels (response_key);
CREATE TABLE IF NOT EXISTS review_gold_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, dataset TEXT NOT NULL, prompt_id TEXT NOT NULL, model TEXT,
    sample INTEGER, reviewer TEXT NOT NULL, action TEXT NOT NULL, note TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS review_gold_log_prompt ON review_gold_log (dataset, prompt_id);
"""
SCHEMA = CORE_TABLES + BATCH_TABLES + REVIEW_TABLES


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


# (version, the statements that bring a store of version-1 up to it), in order.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        2,
        [
            "ALTER TABLE runs ADD COLUMN fingerprints TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE responses ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE responses ADD COLUMN provider_model TEXT",
            "ALTER TABLE responses ADD COLUMN system_fingerprint TEXT",
            "ALTER TABLE judgments ADD COLUMN reference_hash TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE judgments ADD COLUMN settings_hash TEXT NOT NULL DEFAULT ''",
            "CREATE TABLE IF NOT EXISTS leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL)",
        ],
    ),
    (
        3,
        [  # judgment confidence and the member that decided (cascades, panels)
            "ALTER TABLE judgments ADD COLUMN confidence REAL",
            "ALTER TABLE judgments ADD COLUMN decided_by TEXT",
        ],
    ),
    (
        4,
        [  # deccp_eval.base.degenerate's reason ('' when checked and not degenerate; NULL: an error, or older rows)
            "ALTER TABLE responses ADD COLUMN degenerate TEXT",
        ],
    ),
    # provider batches and human review under this path; before, each module created its own tables on
    # use (IF NOT EXISTS: a store that already has them keeps their rows)
    (5, _statements(BATCH_TABLES) + _statements(REVIEW_TABLES)),
    (
        6,
        [  # the rules `degenerate` was decided under (`degenerate.rules_version`); NULL: before this column
            "ALTER TABLE responses ADD COLUMN degenerate_rules TEXT",
            # opening a store asks which answers other rules decided: an index answers without a table scan
            "CREATE INDEX IF NOT EXISTS responses_degenerate_rules ON responses (degenerate_rules)",
        ],
    ),
]
assert [v for v, _ in MIGRATIONS] == list(range(2, SCHEMA_VERSION + 1)), "MIGRATIONS: one step per version, in order"

# Tables every deccp-eval store has had since version 1: how a foreign SQLite file is told apart.
V1_TABLES = {"runs", "prompts", "responses", "run_items", "judgments", "gold"}


def schema_version(conn: sqlite3.Connection, path: str | Path = "") -> int:
    """0 for an empty file, 1 for a store made before versioning; StoreError for a foreign file."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "schema_version" in tables:
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0
    if not tables:
        return 0
    if V1_TABLES <= tables:
        return 1
    raise StoreError(
        f"{path} is an SQLite file but not a deccp-eval store (it has tables "
        f"{', '.join(sorted(tables)[:6])}); pass another --db"
    )


def migrate(conn: sqlite3.Connection, path: str | Path = "") -> int:
    """Create a fresh store, migrate an older one, or refuse a newer or foreign file; returns the
    version found before (SCHEMA_VERSION when there was nothing to do)."""
    found = schema_version(conn, path)
    if found == SCHEMA_VERSION:
        return found
    if conn.in_transaction:
        conn.commit()
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(conn, path)  # another process may have migrated meanwhile
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"{path} has store schema version {found}; this deccp-eval reads up to "
                f"version {SCHEMA_VERSION}: upgrade deccp-eval (pip install -U deccp-eval)"
            )
        if found == 0:
            for stmt in _statements(SCHEMA):
                conn.execute(stmt)
        else:
            for version, statements in MIGRATIONS:
                if version > found:
                    for stmt in statements:
                        conn.execute(stmt)
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        if found != SCHEMA_VERSION:
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return found
