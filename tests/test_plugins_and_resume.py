"""Third-party plugins by entry point, and a run killed with SIGKILL that resumes cleanly."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from conftest import cli

PLUGIN = textwrap.dedent("""
    from deccp_eval.backends.contract import BatchBackend
    from deccp_eval.base.hookspecs import hookimpl
    from deccp_eval.base.schema import Response

    class Reverse(BatchBackend):
        name = "reverse"
        description = "answers with the question backwards"

        def generate_batch(self, requests):
            return [Response(key=r.key, text=r.text[::-1], tokens_out=len(r.text)) for r in requests]

    @hookimpl
    def register_backends(register):
        register(Reverse)
""")


def _install_plugin(site):
    (site / "my_deccp_plugin.py").write_text(PLUGIN)
    dist = site / "my_deccp_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-deccp-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[deccp_eval]\nreverse = my_deccp_plugin\n")
    return {"PYTHONPATH": str(site)}


def test_entry_point_plugin_generates(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    env = _install_plugin(site)
    listing = cli("plugins", env=env, check=True).stdout
    assert "reverse" in listing and "answers with the question backwards" in listing
    db = tmp_path / "r.db"
    cli("run", "-m", "reverse:any", "--limit", "2", "--db", str(db), env=env, check=True)
    rows = (
        sqlite3.connect(db)
        .execute("SELECT r.text, p.text FROM responses r JOIN prompts p ON p.id = r.prompt_id")
        .fetchall()
    )
    assert len(rows) == 4 and all(answer == question[::-1] for answer, question in rows)


def _count(db):
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def test_sigkill_mid_run_then_resume(tmp_path, toy_path):
    db = tmp_path / "results" / "deccp.db"
    args = [
        sys.executable,
        "-m",
        "deccp_eval.cli",
        "run",
        "-m",
        "hf:deccp-toy",
        "--limit",
        "40",
        "--batch-size",
        "1",
        "--max-tokens",
        "40",
        "--db",
        str(db),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _count(db) < 8 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _count(db)
    assert 8 <= before < 80, "the kill should land mid-run"
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    first = dict(con.execute("SELECT key, created FROM responses").fetchall())
    con.close()

    cli(*args[3:], check=True)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = con.execute("SELECT key, created FROM responses").fetchall()
    assert len(rows) == 80 and len({k for k, _ in rows}) == 80
    assert con.execute("SELECT COUNT(*) FROM responses WHERE error IS NOT NULL").fetchone()[0] == 0
    # what the killed run stored was kept, not generated again
    assert all(dict(rows)[k] == created for k, created in first.items())
    # and a third run sends nothing
    third = cli(*args[3:], check=True)
    assert "80" in third.stderr and con.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 80
