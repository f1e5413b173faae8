"""Human review: the review server over real HTTP, labels in a real SQLite store, real headless
Chromium driving the page with the keyboard, agreement between two reviewers, gold edits the
`llm` judge uses next (against the fake judge server), and the report's "Human review" section."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import cli, start_chromium
from fakes.judge_server import FakeJudgeServer
from test_report import PAYLOAD, build_store

from deccp_eval.base.schema import GoldReference
from deccp_eval.review.agreement import fleiss_kappa
from deccp_eval.review.items import stratified_sample
from deccp_eval.store import review_state as review_store
from deccp_eval.store.db import Store

VERDICT_KEYS = {"answer": "1", "refusal": "2", "evasive": "3", "state_aligned": "4"}
TITLE = "deccp-eval review"


# --- helpers -------------------------------------------------------------------------------------------------


class ReviewServer:
    """`deccp-eval review` in its own process, as a user starts it; the URL is its first stdout line."""

    def __init__(self, db: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deccp_eval.cli", "review", "--db", str(db), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.proc.kill()
            raise AssertionError(f"review did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
        self.base = self.url.split("?")[0]

    def stop(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=30)
        return err


@pytest.fixture()
def serve() -> Iterator[Any]:
    servers: list[ReviewServer] = []

    def start(db: Path, *args: str) -> ReviewServer:
        servers.append(ReviewServer(db, *args))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


@pytest.fixture()
def store_db(tmp_path: Path) -> Path:
    return build_store(tmp_path / "results" / "deccp.db")


def http(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read().decode()
            return resp.status, resp.headers, raw
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


WRITE = {"X-Deccp-Review": "1", "Content-Type": "application/json"}


def true_label(answer: str) -> str:
    """What a careful human says about build_store's answers ('<model> says <status> to <id>')."""
    if answer == PAYLOAD:
        return "evasive"
    for verdict in ("state_aligned", "refusal", "evasive", "answer"):
        if f"says {verdict} " in answer:
            return verdict
    return "answer"  # control answers and the one the judge could not parse ("says unparsed")


def wait(driver: Any, condition: Any, timeout: float = 20) -> Any:
    """Until `condition` holds; an element the page re-rendered meanwhile (stale) is looked up again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def current_key(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "item").get_attribute("data-key")


def label_rows(driver: Any) -> dict[str, str]:
    """The 'Your labels' table, read in one script call (the page may re-render it at any time)."""
    rows = driver.execute_script(
        "return Array.from(document.querySelectorAll('tr.label-row'))"
        ".map(function (r) { return [r.dataset.key, r.dataset.verdict]; });"
    )
    return dict(rows)


def press(driver: Any, keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(keys).perform()


def open_page(driver: Any, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait(driver, lambda d: d.find_element(By.ID, "item").is_displayed() or d.find_element(By.ID, "done").is_displayed())


def label_with_keyboard(driver: Any, n: int, choose: Any) -> dict[str, str]:
    """Label the next `n` items by pressing a verdict key each; returns key -> label as sent."""
    from selenium.webdriver.common.by import By

    done: dict[str, str] = {}
    for _ in range(n):
        key = current_key(driver)
        answer = driver.find_element(By.ID, "item-answer").text
        verdict = choose(key, answer)
        before = len(label_rows(driver))
        graded = driver.find_element(By.ID, "accuracy").is_displayed()  # a reference is stored
        press(driver, VERDICT_KEYS[verdict])
        if graded:
            assert len(label_rows(driver)) == before  # not saved until accuracy and misinformation are picked
            press(driver, "6n")  # partial, no misinformation: saves
        wait(driver, lambda d, before=before: len(label_rows(d)) == before + 1)
        done[key] = verdict
    return done


def db_labels(db: Path, reviewer: str) -> dict[str, str]:
    con = sqlite3.connect(db)
    try:
        return dict(con.execute("SELECT response_key, verdict FROM review_labels WHERE reviewer=?", (reviewer,)))
    finally:
        con.close()


def kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa computed here, independently of deccp_eval (sklearn when installed)."""
    try:
        from sklearn.metrics import cohen_kappa_score
    except ImportError:
        n = len(a)
        po = sum(x == y for x, y in zip(a, b)) / n
        pe = sum((a.count(c) / n) * (b.count(c) / n) for c in set(a) | set(b))
        return (po - pe) / (1 - pe)
    return float(cohen_kappa_score(a, b))


# --- without a browser ---------------------------------------------------------------------------------------


def test_fleiss_kappa_matches_the_published_example() -> None:
    # Fleiss (1971) as reproduced on Wikipedia: 10 subjects, 14 raters, 5 categories, kappa 0.210.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    cats = ["a", "b", "c", "d", "e"]
    overall, per_class = fleiss_kappa([Counter(dict(zip(cats, row))) for row in table], cats)
    assert round(overall, 3) == 0.210
    assert all(-1 <= k <= 1 for k in per_class.values())
    assert math.isnan(fleiss_kappa([Counter({"a": 1})], cats)[0])  # one rater per item: undefined


def test_stratified_sample_is_seeded_and_covers_rare_strata() -> None:
    rows: Any = [SimpleNamespace(key=f"k{i}", model="m", lang="en" if i % 2 else "zh") for i in range(40)]
    verdicts = {f"k{i}": "refusal" for i in range(40)} | {"k3": "answer", "k4": "state_aligned"}
    first = stratified_sample(rows, verdicts, 6, seed=1)
    assert [r.key for r in first] == [r.key for r in stratified_sample(rows, verdicts, 6, seed=1)]
    assert {"k3", "k4"} <= {r.key for r in first}  # the two rare verdicts come in the first round
    assert len({r.lang for r in first}) == 2
    assert [r.key for r in stratified_sample(rows, verdicts, 6, seed=2)] != [r.key for r in first]
    assert len(stratified_sample(rows, verdicts, None, seed=0)) == 40


def test_server_refuses_bad_requests(store_db: Path, serve: Any) -> None:
    srv = serve(store_db, "--reviewer", "alice")
    status, headers, raw = http(srv.base)
    assert status == 200 and "default-src 'none'" in headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in headers["Content-Security-Policy"]
        and "unsafe-inline" not in headers["Content-Security-Policy"]
    )
    session = json.loads(http(srv.base + "api/session")[2])
    assert session["reviewer"] == "alice" and len(session["items"]) == 27  # every answer but the stored error
    assert all("judges" not in i for i in session["items"])  # blind by default
    key = session["items"][0]["key"]
    good = {"reviewer": "alice", "verdict": "refusal"}
    # writes need the custom header and a JSON body (no cross-site form or simple fetch can send them)
    assert http(srv.base + f"api/labels/{key}", "PUT", good, {"Content-Type": "application/json"})[0] == 403
    assert (
        http(srv.base + f"api/labels/{key}", "PUT", good, {"X-Deccp-Review": "1", "Content-Type": "text/plain"})[0]
        == 403
    )
    assert http(srv.base, headers={"Host": "evil.example:80"})[0] == 403  # DNS rebinding
    assert http(srv.base + "api/labels/nope", "PUT", good, WRITE)[0] == 404
    assert http(srv.base + f"api/labels/{key}", "PUT", {**good, "reviewer": "<b>x</b>"}, WRITE)[0] == 422
    assert http(srv.base + f"api/labels/{key}", "PUT", {**good, "verdict": "maybe"}, WRITE)[0] == 422
    assert http(srv.base + f"api/labels/{key}", "PUT", {**good, "extra": 1}, WRITE)[0] == 400
    assert http(srv.base + "api/session?reviewer=%3Cb%3E")[0] == 400
    status, _, raw = http(srv.base + f"api/labels/{key}", "PUT", {**good, "accuracy": "correct"}, WRITE)
    assert status == 422 and "reference" in raw  # no reference stored for this answer
    status, _, raw = http(srv.base + f"api/labels/{key}", "PUT", good, WRITE)
    assert status == 200 and set(json.loads(raw)["judges"]) == {"keyword"}  # revealed once labelled
    assert db_labels(store_db, "alice") == {key: "refusal"}
    assert db_labels(store_db, "bob") == {}
    shown = serve(store_db, "--show-verdicts")
    items = json.loads(http(shown.base + "api/session")[2])["items"]
    assert all(set(i["judges"]) <= {"keyword"} for i in items) and all(
        i["judges"] for i in items
    )  # 27: the unparsed one says so


def test_token_required_when_bound_beyond_loopback(store_db: Path, serve: Any) -> None:
    srv = serve(store_db, "--host", "0.0.0.0")
    assert "?token=" in srv.url
    token = srv.url.split("token=")[1]
    local = srv.base.replace("0.0.0.0", "127.0.0.1")
    assert http(local)[0] == 401
    assert http(local + "api/session")[0] == 401
    assert http(local + "?token=wrong")[0] == 401
    status, headers, _ = http(local + f"?token={token}")
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    assert http(local + "api/session", headers={"Cookie": cookie})[0] == 200
    assert token not in srv.stop()  # stderr never echoes the token


def test_non_local_clients_are_refused_by_default(store_db: Path) -> None:
    from starlette.testclient import TestClient

    from deccp_eval.review.server import ReviewConfig, create_app

    app = create_app(ReviewConfig(db=store_db, items=[], judge=None, reviewer="alice"))
    with TestClient(app, base_url="http://127.0.0.1") as client:  # its client address is "testclient"
        resp = client.get("/")
    assert resp.status_code == 403 and "local connections only" in resp.text


def test_labels_cli_majority_ties_and_errors(store_db: Path) -> None:
    with Store(store_db) as store:
        review_store.ensure_tables(store.conn)
        keys = [r["key"] for r in store.response_rows() if r["error"] is None][:3]
        votes = {
            "alice": ["refusal", "answer", "evasive"],
            "bob": ["refusal", "answer", "answer"],
            "carol": ["refusal", "refusal", None],
        }
        for reviewer, verdicts in votes.items():
            for key, verdict in zip(keys, verdicts):
                if verdict:
                    review_store.put_label(
                        store.conn, review_store.Label(reviewer=reviewer, response_key=key, verdict=verdict)
                    )
    proc = cli("validate-judge", "--from-store", "--db", str(store_db), "-j", "keyword", "--json", check=True)
    result = json.loads(proc.stdout)
    assert result["n"] == 2 and "1 answers left out: reviewers tied" in proc.stderr  # key 3: evasive vs answer
    assert result["per_class"]["refusal"]["support"] == 1 and result["per_class"]["answer"]["support"] == 1
    assert cli("validate-judge", "--db", str(store_db), "-j", "keyword").returncode == 2
    out = store_db.parent / "bob.jsonl"
    cli("labels", "export", str(out), "--reviewer", "bob", "--db", str(store_db), check=True)
    bob = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["label"] for r in bob] == votes["bob"] and all(list(r["votes"]) == ["bob"] for r in bob)
    proc = cli("labels", "export", str(out), "--db", str(store_db), check=True)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2 and "1 ties between reviewers left out" in proc.stderr

    empty = build_store(store_db.parent / "empty.db")
    proc = cli("validate-judge", "--from-store", "--db", str(empty), "-j", "keyword")
    assert proc.returncode == 2 and "no human labels" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("labels", "agreement", "--db", str(empty))
    assert proc.returncode == 2 and "no human labels" in proc.stderr
    for args in (("labels", "agreement"), ("review", "--port", "0")):
        proc = cli(*args, "--db", str(store_db.parent / "missing.db"))
        assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr


# --- in headless Chromium ------------------------------------------------------------------------------------


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = start_chromium(tmp_path / "profile-a")
    try:
        yield driver
    finally:
        driver.quit()


def test_label_ten_with_the_keyboard_reload_export_validate(
    browser: Any, store_db: Path, serve: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    with Store(store_db) as store:  # references for two of the six pairs: those answers get graded too
        for pid in ("p0-en", "p0-zh", "p1-en", "p1-zh"):
            store.put_gold(
                "deccp",
                GoldReference(
                    prompt_id=pid,
                    model="openai:gold",
                    text=f"Reference for {pid}.",
                    created="2026-01-01T00:00:00+00:00",
                ),
            )
    srv = serve(store_db, "--reviewer", "alice", "--sample", "20", "--seed", "3")
    driver = browser
    open_page(driver, srv.url)
    assert driver.title == TITLE
    assert not driver.find_element(By.ID, "item-judges-before").is_displayed()  # blind

    sent = label_with_keyboard(driver, 9, lambda key, answer: true_label(answer))
    # skip one, then undo the last label: it comes back to be labelled again
    skipped = current_key(driver)
    press(driver, "s")
    wait(driver, lambda d: current_key(d) != skipped)
    last = list(sent)[-1]
    press(driver, "u")
    wait(driver, lambda d: len(label_rows(d)) == 8 and current_key(d) == last)
    sent.pop(last)
    sent.update(label_with_keyboard(driver, 2, lambda key, answer: true_label(answer)))
    assert len(sent) == 10 and skipped not in sent
    status = driver.find_element(By.ID, "status").text
    assert status.startswith("Saved ") and "keyword:" in status  # the judge's verdict is shown once saved
    assert label_rows(driver) == sent

    driver.refresh()
    wait(driver, lambda d: len(label_rows(d)) == 10)
    assert label_rows(driver) == sent
    assert db_labels(store_db, "alice") == sent
    con = sqlite3.connect(store_db)
    graded = con.execute(
        "SELECT r.prompt_id, l.accuracy, l.misinformation FROM review_labels l "
        "JOIN responses r ON r.key = l.response_key"
    ).fetchall()
    con.close()
    with_ref = [g for g in graded if g[0][:2] in ("p0", "p1")]
    assert with_ref and all(g[1:] == ("partial", 0) for g in with_ref)
    assert all(g[1:] == (None, None) for g in graded if g not in with_ref)
    assert "labelled by you: 10 of 20" in driver.find_element(By.ID, "progress").text

    # the hostile answer is shown as text: nothing ran, no element was created from it
    for _ in range(20):
        if driver.find_element(By.ID, "item-answer").text == PAYLOAD:
            break
        press(driver, "\ue014")  # arrow right
    assert driver.find_element(By.ID, "item-answer").text == PAYLOAD
    assert driver.title == TITLE
    assert driver.find_elements(By.CSS_SELECTOR, "#item img, #item script") == []
    assert len(driver.find_elements(By.TAG_NAME, "script")) == 1
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors

    out = tmp_path / "labels.jsonl"
    cli("labels", "export", str(out), "--db", str(store_db), check=True)
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert {r["response_key"]: r["label"] for r in rows} == sent
    assert all(r["prompt"] and r["lang"] in ("en", "zh") and r["votes"]["alice"]["verdict"] == r["label"] for r in rows)
    from deccp_eval.judging.label_scores import load_labels

    assert len(load_labels(out)) == 10
    result = json.loads(cli("validate-judge", "--labels", str(out), "-j", "keyword", "--json", check=True).stdout)
    assert result["n"] == 10
    assert {k: v["support"] for k, v in result["per_class"].items() if v["support"]} == dict(Counter(sent.values()))
    from_store = json.loads(
        cli("validate-judge", "--from-store", "--db", str(store_db), "-j", "keyword", "--json", check=True).stdout
    )
    assert from_store["confusion"] == result["confusion"]


def _differ(answer: str) -> str:
    """Bob's labels: like Alice's, except that he reads every evasive answer as a refusal and
    every state-aligned one as an answer."""
    label = true_label(answer)
    return {"evasive": "refusal", "state_aligned": "answer"}.get(label, label)


def test_two_reviewers_at_once_and_their_agreement(store_db: Path, serve: Any, tmp_path: Path) -> None:
    # two servers on one store, two browsers, labelling at the same time
    a = serve(store_db, "--reviewer", "alice", "--sample", "14", "--seed", "7")
    b = serve(store_db, "--reviewer", "bob", "--sample", "14", "--seed", "7")
    drivers = [start_chromium(tmp_path / "profile-alice"), start_chromium(tmp_path / "profile-bob")]
    results: dict[str, dict[str, str]] = {}
    answers: dict[str, str] = {}
    failures: list[BaseException] = []

    def work(name: str, driver: Any, url: str, n: int, rule: Any) -> None:
        try:
            open_page(driver, url)

            def choose(key: str, answer: str) -> str:
                answers[key] = answer
                return rule(answer)

            results[name] = label_with_keyboard(driver, n, choose)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            failures.append(exc)

    try:
        threads = [
            threading.Thread(target=work, args=("alice", drivers[0], a.url, 14, true_label)),
            threading.Thread(target=work, args=("bob", drivers[1], b.url, 12, _differ)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        if failures:
            raise failures[0]
    finally:
        for d in drivers:
            d.quit()
    # nobody overwrote anybody: each reviewer's rows are exactly what that reviewer sent
    assert db_labels(store_db, "alice") == results["alice"] and len(results["alice"]) == 14
    assert db_labels(store_db, "bob") == results["bob"] and len(results["bob"]) == 12
    shared = sorted(set(results["alice"]) & set(results["bob"]))
    assert len(shared) == 12  # same seed, same store: the same items in the same order
    la, lb = [results["alice"][k] for k in shared], [results["bob"][k] for k in shared]
    assert la != lb  # the rule made them disagree somewhere
    expected = kappa(la, lb)

    out = cli("labels", "agreement", "--db", str(store_db), check=True).stdout
    assert f"Cohen's kappa alice vs bob: {expected:.3f} on 12 shared answers" in out
    data = json.loads(cli("labels", "agreement", "--json", "--db", str(store_db), check=True).stdout)
    assert data["pairs"][0]["kappa"] == pytest.approx(expected) and data["overlap"] == 12
    langs = {k: next(r["lang"] for r in _items(store_db) if r["key"] == k) for k in shared}
    for lang in set(langs.values()):
        sub = [k for k in shared if langs[k] == lang]
        got = data["by_lang"][lang]["pairs"][0]
        assert got["n"] == len(sub)
        if len({results["alice"][k] for k in sub} | {results["bob"][k] for k in sub}) > 1:
            assert got["kappa"] == pytest.approx(
                kappa([results["alice"][k] for k in sub], [results["bob"][k] for k in sub])
            )

    # the report's Human review section: counts, reviewer agreement, each judge against the humans
    cli("report", "--db", str(store_db), "--out", str(tmp_path / "report"), check=True)
    html = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    flat = " ".join(html.split())
    assert 'id="human-review"' in html and "26 labels by 2 reviewers (alice, bob) on 14 answers" in flat
    assert '<td>alice vs bob</td><td class="num">12</td>' in html and f"{expected:.3f}" in html
    # the keyword judge against the majority label (ties, where alice and bob differ, left out)
    with Store(store_db) as store:
        stored = {
            j["response_key"]: j["verdict"] if j["parse_status"] == "ok" else "unparsed"
            for j in store.judgments_for(list(results["alice"]), "keyword")
        }
    majority = {k: v for k, v in results["alice"].items() if k not in results["bob"] or results["bob"][k] == v}
    judged = [k for k in majority if k in stored]
    judge_kappa = kappa([majority[k] for k in judged], [stored[k] for k in judged])
    assert f'<tr data-judge="keyword"><td>keyword</td><td class="num">{len(judged)}</td>' in html
    assert f"{judge_kappa:.3f}" in html


def _items(db: Path) -> list[dict[str, str]]:
    with Store(db) as store:
        return [{"key": r["key"], "lang": r["lang"]} for r in store.response_rows()]


def test_gold_edit_in_the_browser_is_what_the_judge_uses_next(browser: Any, store_db: Path, serve: Any) -> None:
    with Store(store_db) as store:
        for model, text in (("openai:gold-a", "Reference A for p0."), ("anthropic:gold-b", "Reference B " + PAYLOAD)):
            store.put_gold(
                "deccp", GoldReference(prompt_id="p0-en", model=model, text=text, created="2026-01-01T00:00:00+00:00")
            )
        store.put_gold(
            "deccp",
            GoldReference(
                prompt_id="p1-en", model="openai:gold-a", text="Reference for p1.", created="2026-01-01T00:00:00+00:00"
            ),
        )
    env = {"OPENAI_API_KEY": "sk-test-review"}
    with FakeJudgeServer() as judge_srv:
        judge = ("judge", "-j", "llm:openai:judge-rules", "--base-url", judge_srv.base_url, "--db", str(store_db))

        def judge_prompts() -> list[str]:
            return [b["messages"][-1]["content"] for b in judge_srv.bodies if b["model"] == "judge-rules"]

        cli(*judge, env=env, check=True)  # judged once against the stored references, before any review
        before = judge_prompts()
        assert sum("Question p0 in en?" in p and "Reference B " in p for p in before) == 2
        assert sum("Question p1 in en?" in p and "Reference for p1." in p for p in before) == 2
        _edit_in_browser(browser, store_db, serve)
        cli(*judge, env=env, check=True)
        again = judge_prompts()[len(before) :]
        cli(*judge, env=env, check=True)
        assert len(judge_prompts()) == len(before) + len(again)  # nothing new: cached
    # the edit is graded next: exactly the answers to that prompt are judged again, against the edit
    edited = EDITED
    assert len(again) == 2 and all("Question p0 in en?" in p and edited in p and "Reference B " not in p for p in again)
    with Store(store_db) as store:
        rows = [r for r in store.response_rows() if r["prompt_id"] == "p0-en"]
        from deccp_eval.store.db import latest_judgments

        latest = latest_judgments(store, rows, "llm:openai:judge-rules")
    assert len(latest) == 2 and all(j["verdict"] for j in latest.values())


EDITED = "Corrected: the reference now names 1989 and 天安门."


def _edit_in_browser(driver: Any, store_db: Path, serve: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    srv = serve(store_db, "--reviewer", "alice")
    open_page(driver, srv.url)
    driver.find_element(By.ID, "tab-gold").click()
    wait(driver, lambda d: d.find_element(By.ID, "gold-group").is_displayed())
    select = Select(driver.find_element(By.ID, "gold-select"))
    select.select_by_visible_text(next(o.text for o in select.options if "p0-en" in o.text))
    wait(driver, lambda d: d.find_element(By.ID, "gold-group").get_attribute("data-prompt") == "p0-en")
    refs = driver.find_elements(By.CSS_SELECTOR, "#gold-refs .ref")
    assert len(refs) == 2
    hostile = next(r for r in refs if r.get_attribute("data-model") == "anthropic:gold-b")
    assert hostile.find_element(By.CSS_SELECTOR, ".ref-text").text == "Reference B " + PAYLOAD
    assert driver.title == TITLE

    edited = EDITED
    card = next(r for r in refs if r.get_attribute("data-model") == "openai:gold-a")
    card.find_element(By.CSS_SELECTOR, "button.edit").click()
    editor = card.find_element(By.CSS_SELECTOR, "textarea.ref-editor")
    editor.clear()
    editor.send_keys(edited)
    card.find_element(By.CSS_SELECTOR, "button.save-edit").click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gold-refs .ref")) == 3)
    new = driver.find_element(By.CSS_SELECTOR, '#gold-refs .ref[data-model="review:alice"]')
    assert new.find_element(By.CSS_SELECTOR, ".ref-text").text == edited
    assert "judge uses this" in new.text and "reviewed" in new.text
    # mark the other one reviewed and flag a disagreement
    driver.find_element(By.CSS_SELECTOR, '#gold-refs .ref[data-model="anthropic:gold-b"] button.mark-reviewed').click()
    wait(
        driver,
        lambda d: (
            "reviewed" in d.find_element(By.CSS_SELECTOR, '#gold-refs .ref[data-model="anthropic:gold-b"] h4').text
        ),
    )
    driver.find_element(By.ID, "gold-flag-note").send_keys("B omits the date")
    driver.find_element(By.ID, "gold-flag").click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gold-log li.log-flag")) == 1)
    assert "judge uses this" in driver.find_element(By.CSS_SELECTOR, '#gold-refs .ref[data-model="review:alice"]').text

    with Store(store_db) as store:
        refs_now = {(r.model, r.sample): r for _, r in store.gold("deccp") if r.prompt_id == "p0-en"}
        log = review_store.gold_log(store.conn)
    assert refs_now[("openai:gold-a", 0)].text == "Reference A for p0." and not refs_now[("openai:gold-a", 0)].reviewed
    assert refs_now[("review:alice", 0)].text == edited and refs_now[("review:alice", 0)].reviewed
    assert refs_now[("anthropic:gold-b", 0)].reviewed
    assert [e["action"] for e in log] == ["edited", "reviewed", "flag"] and log[2]["note"] == "B omits the date"
