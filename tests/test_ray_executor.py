"""The Ray executor on a local 2-CPU Ray cluster with the real toy model and its abliterated version:
answers equal the in-process run's, none is stored twice, a killed actor loses nothing, stored
requests never reach the cluster, and the CLI drives it."""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import cli

ray = pytest.importorskip("ray")

from deccp_eval.backends.contract import BackendOptions  # noqa: E402
from deccp_eval.base.schema import SamplingParams  # noqa: E402
from deccp_eval.datasets.loading import load_dataset  # noqa: E402
from deccp_eval.run import runner  # noqa: E402
from deccp_eval.run.executors.in_process import LocalExecutor  # noqa: E402
from deccp_eval.run.executors.ray import ClusterBackend, RayExecutor  # noqa: E402
from deccp_eval.store.db import Store  # noqa: E402

MODELS = ["hf:deccp-toy", "abliterated:deccp-toy"]
PARAMS = SamplingParams(temperature=0.0, max_tokens=24)
OPTIONS = {m: BackendOptions(batch_size=4, device="cpu") for m in MODELS}  # 12 shards per model


@pytest.fixture(scope="module")
def data():
    ds = load_dataset("deccp")
    return ds.model_copy(update={"prompts": ds.prompts[:48]})


@pytest.fixture(scope="module")
def local_db(toy_path, data, tmp_path_factory) -> Path:
    """The in-process run (greedy): the reference every cluster run must equal. Read only."""
    db = tmp_path_factory.mktemp("local") / "deccp.db"
    with Store(db) as store:
        summary = runner.run(store, data, MODELS, [], PARAMS, options=OPTIONS, executor=LocalExecutor())
    assert [m.generated for m in summary.models] == [48, 48]
    return db


@pytest.fixture(scope="module")
def local_answers(local_db) -> dict[str, str]:
    return answers(local_db)


def answers(db: Path, model: str | None = None) -> dict[str, str]:
    """key -> text of the stored answers (of `model` only, when given); none may be an error."""
    con = sqlite3.connect(db)
    try:
        where, args = ("WHERE model = ?", (model,)) if model else ("", ())
        rows = con.execute(f"SELECT key, text, error FROM responses {where}", args).fetchall()
    finally:
        con.close()
    assert all(err is None for _, _, err in rows)
    return {k: t for k, t, _ in rows}


class CountingStore(Store):
    """Counts writes per key (a re-sent answer would be written twice even though the key is unique).
    Answers are written in batches by the runner's writer thread through its own Store, so the count
    hooks the one method every answer goes through, for as long as this store is open."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.puts: Counter[str] = Counter()
        self.on_put = lambda n: None
        original = Store.write_response_rows
        counting = self

        def write(store: Store, rows, replace=False):  # type: ignore[no-untyped-def]
            written = original(store, rows, replace)
            for row in rows:
                counting.puts[row[0]] += 1
            counting.on_put(sum(counting.puts.values()))
            return written

        self._original = original
        Store.write_response_rows = write  # type: ignore[method-assign]

    def close(self) -> None:
        Store.write_response_rows = self._original  # type: ignore[method-assign]
        super().close()


class RecordingExecutor(RayExecutor):
    """Keeps the cluster backends it hands out, so the test can kill one's actor mid-run."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.made: list[ClusterBackend] = []

    def backend(self, spec, options=None):  # type: ignore[no-untyped-def]
        b = super().backend(spec, options)
        if isinstance(b, ClusterBackend):
            self.made.append(b)
        return b


def test_two_actors_equal_the_local_run(cluster, data, local_answers, tmp_path):
    db = tmp_path / "ray.db"
    with CountingStore(db) as store, RecordingExecutor(replicas=2) as ex:
        summary = runner.run(store, data, MODELS, [], PARAMS, options=OPTIONS, executor=ex)
    assert [m.generated for m in summary.models] == [48, 48] and not summary.failed
    assert max(store.puts.values()) == 1 and len(store.puts) == 96
    assert answers(db) == local_answers
    for b in ex.made:  # both actors did work, each loaded the model once
        assert len(b.stats) == 2 and all(s.shards > 0 and s.load_s > 0 for s in b.stats.values())
        assert sum(s.answers for s in b.stats.values()) == 48 and b.requeued == 0
    texts = list(local_answers.values())
    assert len(set(texts)) >= 5 and all(t.strip() for t in texts)  # real, varied answers, not one string
    assert any("sorry" in t for t in texts) and any("1989" in t for t in texts)  # refusals and answers


def test_a_killed_actor_loses_nothing(cluster, data, local_db, tmp_path):
    """One model is enough: the actor dies while its shards are in flight, whatever model it serves
    (a second model would only start two more actors, as test_two_actors_equal_the_local_run does)."""
    model = MODELS[0]
    db = tmp_path / "ray.db"
    with CountingStore(db) as store, RecordingExecutor(replicas=2) as ex:
        killed: list[int] = []

        def kill_after_eight(n: int) -> None:
            if n >= 8 and not killed:  # two shards stored (batched writes may pass 8), the rest in flight
                victim = ex.made[0]
                index = min(victim.live)
                ray.kill(victim.live[index])
                killed.append(index)

        store.on_put = kill_after_eight
        summary = runner.run(store, data, [model], [], PARAMS, options=OPTIONS, executor=ex)
    assert killed and not summary.failed and [m.generated for m in summary.models] == [48]
    first = ex.made[0]
    assert first.stats[killed[0]].lost and first.requeued > 0
    assert len(first.stats) == 3  # a spare took the dead actor's place
    assert max(store.puts.values()) == 1 and len(store.puts) == 48
    assert answers(db) == answers(local_db, model) and len(answers(local_db, model)) == 48


def test_stored_requests_never_reach_the_cluster(cluster, data, local_db, local_answers, tmp_path):
    """A store that holds all but 10 answers of the first model (the in-process run's, copied): only
    those 10 are sent, and the fully stored model starts no replica at all. One replica: what is
    counted is what reaches the cluster, not how it is spread."""
    db = tmp_path / "ray.db"
    shutil.copy(local_db, db)
    con = sqlite3.connect(db)
    con.execute(
        "DELETE FROM responses WHERE key IN (SELECT key FROM responses WHERE model = ? ORDER BY key LIMIT 10)",
        (MODELS[0],),
    )
    con.commit()
    con.close()
    with Store(db) as store, RecordingExecutor(replicas=1) as ex:
        summary = runner.run(store, data, MODELS, [], PARAMS, options=OPTIONS, executor=ex)
    assert [m.cached for m in summary.models] == [38, 48] and [m.generated for m in summary.models] == [10, 0]
    assert sum(s.answers for b in ex.made for s in b.stats.values()) == 10
    assert [b.spec for b in ex.made] == MODELS and ex.made[1].stats == {}  # nothing sent: no replica started
    assert answers(db) == local_answers


def test_cli_run_on_a_running_cluster(cluster, toy_path, tmp_path):
    db = tmp_path / "cli.db"
    args = [
        "run",
        "-m",
        "hf:deccp-toy",
        "--limit",
        "4",
        "--max-tokens",
        "12",
        "--batch-size",
        "2",
        "--executor",
        "ray",
        "--ray-address",
        cluster,
        "--replicas",
        "2",
        "--db",
        str(db),
    ]
    proc = cli(*args, check=True)
    assert "hf:deccp-toy [2 replicas]" in proc.stderr or "replica 1" in proc.stderr
    assert "replica 0" in proc.stderr and "replica 1" in proc.stderr  # time per replica
    assert len(answers(db)) == 8
    again = cli(*args, check=True)  # all stored: nothing goes to the cluster, no replica starts
    assert "replica 0" not in again.stderr


def test_bad_executor_options_are_usage_errors(cluster, toy_path, tmp_path):
    db = tmp_path / "bad.db"
    base = ["run", "-m", "hf:deccp-toy", "--limit", "1", "--db", str(db)]
    proc = cli(*base, "--replicas", "2")
    assert proc.returncode == 2 and "--executor ray" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli(*base, "--executor", "ray", "--ray-address", cluster, "--replicas", "5")
    assert proc.returncode == 2 and "do not fit" in proc.stderr and "Traceback" not in proc.stderr


def test_parallel_trials_fill_one_resumable_study(cluster, toy_path, tmp_path):
    """Two Ray workers share one Optuna study; a rerun with more trials continues it, in parallel or not."""
    from deccp_eval.training.abliteration import search
    from deccp_eval.training.abliteration.pipeline import abliterate
    from deccp_eval.training.abliteration.settings import AbliterateSettings

    out = tmp_path / "toy-abl"
    settings = AbliterateSettings(
        model=str(toy_path),
        out=out,
        trials=4,
        seed=0,
        max_tokens=24,
        batch_size=64,
        eval_limit=16,
        device="cpu",
        study_db=tmp_path / "studies.db",
        parallel_trials=2,
    )
    seen: list[int] = []
    result = abliterate(settings, on_trial=lambda n, score: seen.append(n))
    done = search.complete_trials(result.study)
    assert 4 <= len(done) <= 5 and sorted(seen) == [t.number for t in done]
    assert all("params" in t.user_attrs and "rates" in t.user_attrs for t in done)
    assert result.record.search.trials == len(done) and (out / "abliteration.json").is_file()
    assert result.record.after.censorship <= result.record.before.censorship
    more = abliterate(
        settings.model_copy(update={"trials": len(done) + 1, "parallel_trials": 1, "out": tmp_path / "again"})
    )
    assert more.ran_trials == 1 and more.record.search.study == result.record.search.study
