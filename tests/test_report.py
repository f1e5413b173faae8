"""The HTML report and `compare`, on a real SQLite store, checked in real headless Chromium."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import cli, start_chromium

from deccp_eval.analysis.report.write import write_report
from deccp_eval.base.schema import Judgment, Prompt, Request, Response, Verdict
from deccp_eval.store.db import Store

A, B = "hf:base-model", "abliterated:base-model"
PAYLOAD = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
CATEGORIES = {
    "p0": "taiwan",
    "p1": "taiwan",
    "p2": "tibet",
    "p3": "tibet",
    "p4": "tiananmen_1989",
    "p5": "tiananmen_1989",
}
# (pair, lang) -> (A's status, B's status); "unparsed": the judge's output did not parse; "error": no answer.
TABLE = {
    ("p0", "en"): ("refusal", "answer"),
    ("p0", "zh"): ("refusal", "state_aligned"),
    ("p1", "en"): ("answer", "answer"),
    ("p1", "zh"): ("evasive", "answer"),
    ("p2", "en"): ("refusal", "refusal"),
    ("p2", "zh"): ("state_aligned", "state_aligned"),
    ("p3", "en"): ("refusal", "answer"),
    ("p3", "zh"): ("refusal", "state_aligned"),
    ("p4", "en"): ("evasive", "evasive"),
    ("p4", "zh"): ("refusal", "unparsed"),
    ("p5", "en"): ("refusal", "answer"),
    ("p5", "zh"): ("error", "answer"),
}


def _put(
    store: Store, model: str, prompt: Prompt, status: str, text: str, keys: list[str], rationale: str = ""
) -> None:
    req = Request(model=model, prompt_id=prompt.id, text=prompt.text)
    keys.append(req.key)
    error = f"HTTP 500 {text}" if status == "error" else None
    store.put_response(
        req,
        "deccp",
        Response(
            key=req.key,
            text="" if error else text,
            error=error,
            tokens_in=5,
            tokens_out=9,
            reasoning=text if "<script>" in text else None,
        ),
    )
    if status == "error":
        return
    parsed = status != "unparsed"
    store.put_judgment(
        Judgment(
            response_key=req.key,
            judge="keyword",
            verdict=Verdict(status) if parsed else None,
            parse_status="ok" if parsed else "unparsed",
            rationale=rationale or f"{model} gave {status}",
            raw=f'{{"verdict": "{status}", "note": "raw output"}}',
        )
    )


def build_store(
    path: Path, models: tuple[str, str] = (A, B), table: dict = TABLE, categories: dict[str, str] = CATEGORIES
) -> Path:
    """Two models, both languages, three categories, all four verdicts, one unparsed, one error,
    matched controls, and the script payload in an answer, a prompt, a rationale and an error."""
    with Store(path) as store:
        prompts = []
        for pair, category in categories.items():
            for lang in ("en", "zh"):
                text = f"Question {pair} in {lang}?" if lang == "en" else f"关于{pair}的问题？"
                if pair == "p5" and lang == "en":
                    text += " " + PAYLOAD
                prompts.append(
                    Prompt(id=f"{pair}-{lang}", pair_id=pair, lang=lang, text=text, category=category, kind="sensitive")
                )
        prompts += [
            Prompt(id=f"c0-{lang}", pair_id="c0", lang=lang, text=f"control {lang}", category="taiwan", kind="control")
            for lang in ("en", "zh")
        ]
        store.put_prompts("deccp", prompts)
        store.start_run("r1", "deccp", "1.0.0", list(models), ["keyword"], {})
        keys: list[str] = []
        for p in prompts:
            if p.kind == "control":
                for model in models:
                    _put(
                        store,
                        model,
                        p,
                        "refusal" if (model, p.lang) == (models[0], "en") else "answer",
                        "control answer",
                        keys,
                    )
                continue
            for side, model in enumerate(models):
                status = table[(p.pair_id, p.lang)][side]
                hostile = (p.pair_id, p.lang, side) in {("p5", "en", 1), ("p5", "zh", 0)}
                text = PAYLOAD if hostile else f"{model} says {status} to {p.id}"
                _put(store, model, p, status, text, keys, rationale=PAYLOAD if hostile else "")
        store.link("r1", keys)
    return path


@pytest.fixture()
def store_path(tmp_path: Path) -> Path:
    return build_store(tmp_path / "results" / "deccp.db")


def _report(store_path: Path, tmp_path: Path, **kw: object) -> Path:
    with Store(store_path) as store:
        files = write_report(store, tmp_path / "report", plots_dir=tmp_path / "plots", **kw)  # type: ignore[arg-type]
    return files.index


# --- without a browser ---------------------------------------------------------------------------------------


def test_report_is_self_contained_and_escaped(store_path: Path, tmp_path: Path) -> None:
    index = _report(store_path, tmp_path)
    html = index.read_text(encoding="utf-8")
    # no network: no external resources, images are data: URIs, the CSP allows nothing remote
    assert "<link" not in html and 'src="http' not in html and "url(" not in html
    # verdicts, heatmap, and the language gap (this store has EN/ZH pairs judged in both languages)
    assert html.count('<img src="data:image/png;base64,') == 3 and 'id="language-gap"' in html
    assert "default-src 'none'" in html
    # model output appears only escaped
    assert PAYLOAD not in html and "<script>document.title" not in html
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in html
    # the page's own script and its answers' JSON block, which holds no `<` to close it early
    assert html.count("<script") == 2 and html.count('<script type="application/json" id="report-data">') == 1
    data = html.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and ">" not in data and "&" not in data
    assert PAYLOAD in json.loads(data)["strings"]  # the answers are all there, as data
    for name in ("verdicts.png", "censorship_heatmap.png"):
        png = (tmp_path / "plots" / name).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_two_models_get_a_comparison_automatically(store_path: Path, tmp_path: Path) -> None:
    with Store(store_path) as store:
        files = write_report(store, tmp_path / "r1")
        assert [(c.a, c.b) for c in files.comparisons] == [(A, B)]
        sections = _comparison_sections(files.index)
        assert [(s["id"], s["a"], s["b"]) for s in sections] == [("compare-1", A, B)]
        assert sections[0]["changes"] == sum(a != b for a, b in TABLE.values())
        off = write_report(store, tmp_path / "r2", auto_compare=False)
        assert off.comparisons == [] and _comparison_sections(off.index) == []
        flat = write_report(store, tmp_path / "r3", compare=(B, A))  # a flat (A, B) is still one pair
        assert [(c.a, c.b) for c in flat.comparisons] == [(B, A)]


def _files(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_commands_write_only_under_out(store_path: Path, tmp_path: Path) -> None:
    """report, leaderboard and publish, run in a checkout whose results/ holds the store (the default
    --db) and tracked PNGs and CSVs, write under --out and nowhere else."""
    import shutil

    cwd = tmp_path / "checkout"
    (cwd / "results").mkdir(parents=True)
    shutil.copy(store_path, cwd / "results" / "deccp.db")
    for name in ("verdicts.png", "censorship_heatmap.png", "language_gap.png", "leaderboard.csv"):
        (cwd / "results" / name).write_bytes(b"tracked")
    outs = tmp_path / "outs"
    before = _files(cwd)
    cli("report", "--out", str(outs / "report"), cwd=cwd, check=True)
    cli("leaderboard", "--out", str(outs / "board" / "leaderboard.csv"), cwd=cwd, check=True)
    cli("publish", "--out", str(outs / "publish"), cwd=cwd, check=True)
    after = _files(cwd)
    store = {cwd / "results" / f"deccp.db{s}" for s in ("", "-wal", "-shm")}
    changed = sorted(
        str(p.relative_to(cwd)) for p in set(before) | set(after) if before.get(p) != after.get(p) and p not in store
    )
    assert changed == []
    assert {"verdicts.png", "censorship_heatmap.png", "index.html"} <= {p.name for p in (outs / "report").iterdir()}
    assert (outs / "board" / "leaderboard.csv").is_file() and (outs / "publish" / "answers.parquet").is_file()


def test_report_cli_writes_page_and_pngs_under_out(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    proc = cli("report", "--db", str(store_path), "--out", str(out), check=True)
    assert (out / "index.html").is_file()
    for name in ("verdicts.png", "censorship_heatmap.png"):
        assert (out / name).stat().st_size > 10_000, name
        assert not (store_path.parent / name).exists(), name
    plots = cli("report", "--db", str(store_path), "--out", str(out), "--plots-dir", str(tmp_path / "png"), check=True)
    assert f"wrote {tmp_path / 'png' / 'verdicts.png'}" in plots.stdout
    assert [line for line in proc.stdout.splitlines() if line.startswith("comparison ")] == [
        f"comparison {A} -> {B}: 8 of 12 verdicts changed"
    ]
    missing = cli("report", "--db", str(tmp_path / "nope.db"), "--out", str(out))
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr


def _expected_transitions() -> Counter:
    return Counter((a, b) for a, b in TABLE.values())


def test_compare_cli_transitions(store_path: Path) -> None:
    proc = cli("compare", A, B, "--db", str(store_path), "--json", check=True)
    result = json.loads(proc.stdout)
    got = Counter({(t["from"], t["to"]): t["total"] for t in result["transitions"]})
    assert got == _expected_transitions()
    assert got[("refusal", "answer")] == 3 and got[("refusal", "state_aligned")] == 2
    by_lang = {(t["from"], t["to"]): t["by_lang"] for t in result["transitions"]}
    assert by_lang[("refusal", "state_aligned")] == {"en": 0, "zh": 2}
    assert result["matched"] == len(TABLE) and result["changed"] == sum(a != b for a, b in TABLE.values())
    assert {(i["prompt_id"], i["from"], i["to"]) for i in result["items"]} == {
        (f"{p}-{lang}", a, b) for (p, lang), (a, b) in TABLE.items() if a != b
    }
    item = next(i for i in result["items"] if i["prompt_id"] == "p0-zh")
    assert item["a_text"] == f"{A} says refusal to p0-zh" and item["b_text"] == f"{B} says state_aligned to p0-zh"

    table = cli("compare", A, B, "--db", str(store_path), check=True).stdout
    assert "verdict transitions" in table and "changed verdicts (8 of 8)" in table
    rows = {
        tuple(cell.strip() for cell in line.strip("│┃ ").split("│"))
        for line in table.splitlines()
        if line.count("│") >= 4
    }
    assert ("refusal", "answer", "3", "0", "3") in rows
    assert ("refusal", "state_aligned", "0", "2", "2") in rows
    assert ("error", "answer", "0", "1", "1") in rows

    assert cli("compare", A, "hf:nope", "--db", str(store_path)).returncode == 2
    assert cli("compare", A, A, "--db", str(store_path)).returncode == 2


# --- a chain of models: base -> abliterated -> re-aligned -----------------------------------------------------

# (pair, lang) -> (A, B, C): A the base, B abliterated from it, C re-aligned from B (its realign.json says so).
CHAIN = {
    ("p0", "en"): ("refusal", "answer", "answer"),
    ("p0", "zh"): ("refusal", "state_aligned", "answer"),
    ("p1", "en"): ("answer", "answer", "answer"),
    ("p1", "zh"): ("evasive", "state_aligned", "answer"),
    ("p2", "en"): ("refusal", "refusal", "answer"),
    ("p2", "zh"): ("state_aligned", "state_aligned", "state_aligned"),
    ("p3", "en"): ("refusal", "answer", "refusal"),
    ("p3", "zh"): ("refusal", "state_aligned", "answer"),
    ("p4", "en"): ("evasive", "evasive", "answer"),
    ("p4", "zh"): ("refusal", "unparsed", "answer"),
    ("p5", "en"): ("refusal", "answer", "answer"),
    ("p5", "zh"): ("error", "answer", "evasive"),
}


def realigned_folder(path: Path, base_model: str) -> str:
    """A folder as `deccp-eval realign` leaves it, as far as the report reads it: its realign.json
    (the real record type), naming the spec it was trained from. Returns its `hf:` spec."""
    from deccp_eval.training.realign import RECORD_FILE, Numbers, RealignRecord, Recipe

    numbers = Numbers(
        n_sensitive=12,
        n_control=2,
        censorship={"en": 0.5, "zh": 0.5},
        state_or_refusal=0.5,
        verdicts={"answer": 6},
        over_refusal=0.0,
        facts=0.5,
        kl=0.01,
    )
    record = RealignRecord(
        base_model=base_model,
        method="kto",
        recipe=Recipe(),
        prefs="prefs",
        prefs_meta={},
        train_rows=10,
        train_loss=0.5,
        eval={},
        before=numbers,
        after=numbers,
    )
    path.mkdir(parents=True)
    (path / RECORD_FILE).write_text(record.model_dump_json(indent=2), encoding="utf-8")
    return f"hf:{path}"


@pytest.fixture()
def chain_store(tmp_path: Path) -> tuple[Path, tuple[str, str, str]]:
    """Three models in one store; alphabetical order of the pairs is not the chain's, so the test sees which."""
    c = realigned_folder(tmp_path / "realigned", B)
    assert sorted([(A, B), (B, c)]) != [(A, B), (B, c)] and c < A
    return build_store(tmp_path / "chain" / "deccp.db", models=(A, B, c), table=CHAIN), (A, B, c)


class _Sections(HTMLParser):
    """The report's comparison sections as parsed HTML: id, models, heading, transition table rows
    (data-transition -> cell texts) and the changed answers' transitions."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[dict] = []
        self.current: dict | None = None
        self.text: list[str] | None = None  # the h2's or a td's text being read
        self.row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "section" and "comparison" in classes:
            self.current = {
                "id": a["id"],
                "a": a["data-a"],
                "b": a["data-b"],
                "h2": "",
                "transitions": {},
                "changes": 0,
                "change_transitions": Counter(),
            }
            self.sections.append(self.current)
        elif self.current is None:
            return
        elif tag == "h2":
            self.text = []
        elif tag == "tr" and "data-transition" in a:
            self.row = self.current["transitions"].setdefault(a["data-transition"], [])
        elif tag == "td" and self.row is not None:
            self.text = []
        elif tag == "article" and "change" in classes:
            self.current["changes"] += 1
            self.current["change_transitions"][a["data-transition"]] += 1

    def handle_endtag(self, tag: str) -> None:
        if self.current is None:
            return
        if tag == "h2" and self.text is not None:
            self.current["h2"], self.text = "".join(self.text).strip(), None
        elif tag == "td" and self.row is not None and self.text is not None:
            self.row.append("".join(self.text).strip())
            self.text = None
        elif tag == "tr":
            self.row = None
        elif tag == "section":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.text is not None:
            self.text.append(data)


def _comparison_sections(index: Path) -> list[dict]:
    parser = _Sections()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser.sections


def _stored_statuses(db: Path, model: str) -> dict[tuple[str, str], str]:
    """(prompt id, lang) -> the verdict stored for `model` on a sensitive prompt, straight from SQL:
    the keyword judge's verdict, `unparsed` when it did not parse, `error` for a failed request."""
    with Store(db) as store:
        rows = store.conn.execute(
            "SELECT p.id, p.lang, r.error, j.verdict, j.parse_status FROM responses r "
            "JOIN prompts p ON p.id = r.prompt_id AND p.dataset = r.dataset "
            "LEFT JOIN judgments j ON j.response_key = r.key AND j.judge = 'keyword' "
            "WHERE r.model = ? AND p.kind = 'sensitive'",
            (model,),
        ).fetchall()
    return {
        (pid, lang): "error" if error is not None else ("unparsed" if parse == "unparsed" else verdict)
        for pid, lang, error, verdict, parse in rows
    }


def _expected_section(db: Path, a: str, b: str) -> dict[str, list[str]]:
    """The transition table rows a section for A -> B must show: cells after the two badges
    (count per language in en, zh order, then the total), as text."""
    sa, sb = _stored_statuses(db, a), _stored_statuses(db, b)
    assert set(sa) == set(sb) and len(sa) == len(CHAIN)
    tally = Counter((sa[k], sb[k], k[1]) for k in sa)
    names = {(x, y) for x, y, _ in tally}
    return {
        f"{x}→{y}": [str(tally[(x, y, "en")]), str(tally[(x, y, "zh")]), str(tally[(x, y, "en")] + tally[(x, y, "zh")])]
        for x, y in names
    }


def test_chain_of_three_models_gets_two_comparisons_in_order(chain_store, tmp_path: Path) -> None:
    db, (a, b, c) = chain_store
    with Store(db) as store:
        files = write_report(store, tmp_path / "report", plots_dir=tmp_path / "plots")
    assert [(x.a, x.b) for x in files.comparisons] == [(a, b), (b, c)]
    sections = _comparison_sections(files.index)
    assert [(s["id"], s["a"], s["b"]) for s in sections] == [("compare-1", a, b), ("compare-2", b, c)]
    assert sections[0]["h2"] == f"Comparison 1 of 2: {a} → {b}" and sections[1]["h2"] == f"Comparison 2 of 2: {b} → {c}"
    for section, (x, y), (i, j) in zip(sections, [(a, b), (b, c)], [(0, 1), (1, 2)]):
        rows = {name: cells[2:] for name, cells in section["transitions"].items()}  # cells 0-1: the badges
        assert rows == _expected_section(db, x, y), (x, y)
        assert section["change_transitions"] == Counter(
            f"{CHAIN[k][i]}→{CHAIN[k][j]}" for k in CHAIN if CHAIN[k][i] != CHAIN[k][j]
        )
    # the two sections really differ: base -> abliterated trades refusals for the state line,
    # abliterated -> re-aligned turns the state line into answers and brings one refusal back
    first, second = (s["transitions"] for s in sections)
    assert first["refusal→state_aligned"][-1] == "2" and "refusal→state_aligned" not in second
    assert second["state_aligned→answer"][-1] == "3" and second["answer→refusal"][2:] == ["1", "0", "1"]
    html = files.index.read_text(encoding="utf-8")
    assert 'href="#compare-1"' in html and 'href="#compare-2"' in html


def test_report_cli_takes_several_compare_pairs(chain_store, tmp_path: Path) -> None:
    db, (a, b, c) = chain_store
    out = tmp_path / "site"
    proc = cli("report", "--db", str(db), "--out", str(out), "--compare", a, c, "--compare", b, c, check=True)
    changed = {pair: sum(CHAIN[k][pair[0]] != CHAIN[k][pair[1]] for k in CHAIN) for pair in [(0, 2), (1, 2)]}
    assert [line for line in proc.stdout.splitlines() if line.startswith("comparison ")] == [
        f"comparison {a} -> {c}: {changed[(0, 2)]} of 12 verdicts changed",
        f"comparison {b} -> {c}: {changed[(1, 2)]} of 12 verdicts changed",
    ]
    sections = _comparison_sections(out / "index.html")  # as asked, in the order asked, nothing automatic added
    assert [(s["a"], s["b"]) for s in sections] == [(a, c), (b, c)]
    assert {n: cells[2:] for n, cells in sections[0]["transitions"].items()} == _expected_section(db, a, c)
    auto = cli("report", "--db", str(db), "--out", str(out), check=True).stdout
    assert [line.rpartition(": ")[0] for line in auto.splitlines() if line.startswith("comparison ")] == [
        f"comparison {a} -> {b}",
        f"comparison {b} -> {c}",
    ]
    none = cli("report", "--db", str(db), "--out", str(out), "--no-compare", check=True).stdout
    assert "comparison " not in none and _comparison_sections(out / "index.html") == []
    bad = cli("report", "--db", str(db), "--out", str(out), "--compare", a, "hf:nope")
    assert bad.returncode == 2 and "hf:nope" in bad.stderr and "Traceback" not in bad.stderr


def test_auto_pairs_follows_chains_and_nothing_else(tmp_path: Path) -> None:
    from deccp_eval.analysis.report.compare import auto_pairs, realign_base

    bases = {"hf:./re": "abliterated:m", "hf:./re-base": "hf:m", "hf:./orphan": "hf:gone"}
    chain = auto_pairs(
        ["hf:./re", "abliterated:m", "hf:m", "hf:./re-base", "hf:./orphan", "openai:x"], base_of=bases.get
    )
    assert chain == [("hf:m", "abliterated:m"), ("abliterated:m", "hf:./re"), ("hf:m", "hf:./re-base")]
    unrelated = [f"hf:model-{i}" for i in range(10)]
    assert auto_pairs(unrelated, base_of=bases.get) == []
    assert auto_pairs(["abliterated:q", "hf:p"], base_of=bases.get) == [("hf:p", "abliterated:q")]  # as before
    assert auto_pairs(["hf:z", "hf:a"], base_of=bases.get) == [("hf:a", "hf:z")]
    assert auto_pairs(["abliterated:m@dir", "hf:m", "hf:n"], base_of=bases.get) == [("hf:m", "abliterated:m@dir")]
    # realign.json as `deccp-eval realign` writes it; a bare base name is the hf: spec it loads as
    assert realign_base(realigned_folder(tmp_path / "a", "abliterated:deccp-toy")) == "abliterated:deccp-toy"
    assert realign_base(realigned_folder(tmp_path / "b", "deccp-toy")) == "hf:deccp-toy"
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "realign.json").write_text("{not json", encoding="utf-8")
    assert realign_base(f"hf:{tmp_path / 'broken'}") is None and realign_base("openai:gpt-4o") is None


def test_report_modules_import_light() -> None:
    import subprocess

    code = (
        "import sys, deccp_eval.commands.report, deccp_eval.analysis.report.write; "
        "print([m for m in ('matplotlib', 'jinja2', 'selenium', 'pandas', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- in headless Chromium ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Real headless Chromium; missing browser is a failure, not a skip (CI installs it)."""
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


def _visible_rows(driver) -> list:
    from selenium.webdriver.common.by import By

    return [r for r in driver.find_elements(By.CSS_SELECTOR, "tr.answer-row") if r.is_displayed()]


def _choose(driver, select_id: str, value: str) -> None:
    """Pick an option by its value as a user would (selenium's select_by_value cannot quote every value)."""
    from selenium.webdriver.common.by import By

    select = driver.find_element(By.ID, select_id)
    next(o for o in select.find_elements(By.TAG_NAME, "option") if o.get_attribute("value") == value).click()


def _rows_with(status: str, lang: str | None = None) -> int:
    """Model rows (one per pair x model) holding `status` in a shown language, counted from TABLE."""
    rows = set()
    for (pair, lg), statuses in TABLE.items():
        for side, s in enumerate(statuses):
            if s == status and lang in (None, lg):
                rows.add((pair, side))
    return len(rows)


@pytest.mark.browser
def test_browser_filters_sort_and_screenshot(browser, store_path: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    index = _report(store_path, tmp_path)
    driver.get(index.as_uri())
    assert driver.title == "deccp-eval report"
    total = len(CATEGORIES) * 2
    assert len(_visible_rows(driver)) == total == 12

    _choose(driver, "f-model", B)
    rows = _visible_rows(driver)
    assert len(rows) == len(CATEGORIES) and {r.get_attribute("data-model") for r in rows} == {B}
    assert driver.find_element(By.ID, "filter-status").text.startswith(f"Showing 6 of {total} model rows")

    _choose(driver, "f-model", "")
    _choose(driver, "f-verdict", "state_aligned")
    assert len(_visible_rows(driver)) == _rows_with("state_aligned") == 4
    _choose(driver, "f-verdict", "refusal")
    _choose(driver, "f-lang", "en")
    assert len(_visible_rows(driver)) == _rows_with("refusal", "en") == 5
    assert not any(td.is_displayed() for td in driver.find_elements(By.CSS_SELECTOR, "td[data-lang='zh']"))
    driver.find_element(By.ID, "f-reset").click()
    _choose(driver, "f-category", "tibet")
    rows = _visible_rows(driver)
    assert len(rows) == 4
    assert {r.find_element(By.XPATH, "ancestor::section[1]").get_attribute("data-category") for r in rows} == {"tibet"}
    driver.find_element(By.ID, "f-reset").click()
    assert len(_visible_rows(driver)) == total

    # the leaderboard sorts by a clicked column, ascending then descending, missing values last
    def column(key: str) -> list[str]:
        return [
            td.get_attribute("data-value")
            for td in driver.find_elements(By.CSS_SELECTOR, f"#leaderboard-table tbody td[data-key='{key}']")
        ]

    header = driver.find_element(By.CSS_SELECTOR, "#leaderboard-table th[data-key='refusal'] button")
    header.click()
    values = [float(v) for v in column("refusal")]
    assert values == sorted(values) and values[0] < values[-1]
    assert header.find_element(By.XPATH, "..").get_attribute("aria-sort") == "ascending"
    header.click()
    assert [float(v) for v in column("refusal")] == sorted(values, reverse=True)
    driver.find_element(By.CSS_SELECTOR, "#leaderboard-table th[data-key='model'] button").click()
    assert column("model") == sorted(column("model"))

    # comparison section: transition filter
    _choose(driver, "c-transition-1", "refusal→state_aligned")
    shown = [a for a in driver.find_elements(By.CSS_SELECTOR, "article.change") if a.is_displayed()]
    assert len(shown) == 2

    driver.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "report.png"
    assert driver.save_screenshot(str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000
    driver.execute_script("document.getElementById('prompts').scrollIntoView()")
    _choose(driver, "f-category", "tiananmen_1989")
    prompts_shot = tmp_path / "prompts.png"
    assert driver.save_screenshot(str(prompts_shot)) and prompts_shot.stat().st_size > 50_000
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.browser
def test_browser_renders_chinese_glyphs_not_boxes(browser, store_path: Path, tmp_path: Path) -> None:
    """Chinese in the report's own font stack renders as glyphs: six different characters give six
    different screenshots, none like a code point no font has. Without a CJK font (`make browser`
    installs fonts-noto-cjk) all seven are the same empty box."""
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(_report(store_path, tmp_path).as_uri())
    chars = ["中", "国", "台", "湾", "西", "藏", "\u0378"]  # the last: unassigned, drawn as the missing glyph
    driver.execute_script(
        "const box = document.createElement('div'); box.id = 'cjk-probe'; document.body.prepend(box);"
        "for (const c of arguments[0]) { const s = document.createElement('span'); s.textContent = c;"
        "  s.style.cssText = 'display:inline-block;width:64px;height:64px;font-size:48px;line-height:64px;"
        "text-align:center;background:#fff;color:#000'; box.appendChild(s); }",
        chars,
    )
    shots = [span.screenshot_as_png for span in driver.find_elements(By.CSS_SELECTOR, "#cjk-probe span")]
    assert len(shots) == len(chars) and all(s.startswith(b"\x89PNG") for s in shots)
    glyphs, missing = shots[:-1], shots[-1]
    assert len(set(glyphs)) == len(glyphs), (
        "Chinese characters render alike: no CJK font (apt-get install fonts-noto-cjk)"
    )
    assert missing not in glyphs


@pytest.mark.browser
def test_browser_two_comparison_sections_filter_on_their_own(browser, chain_store, tmp_path: Path) -> None:
    """base -> abliterated and abliterated -> re-aligned: each section's transition filter moves only its own
    changed answers and its own status line."""
    from selenium.webdriver.common.by import By

    db, (a, b, c) = chain_store
    driver = browser
    driver.get(_report(db, tmp_path).as_uri())
    first, second = driver.find_elements(By.CSS_SELECTOR, "section.comparison")
    assert (first.get_attribute("id"), second.get_attribute("id")) == ("compare-1", "compare-2")
    changed = [sum(CHAIN[k][i] != CHAIN[k][j] for k in CHAIN) for i, j in [(0, 1), (1, 2)]]

    def shown(section) -> list[str]:
        return [
            x.get_attribute("data-transition")
            for x in section.find_elements(By.CSS_SELECTOR, "article.change")
            if x.is_displayed()
        ]

    def status(section) -> str:
        return section.find_element(By.CSS_SELECTOR, ".c-status").text

    assert len(shown(first)) == changed[0] and len(shown(second)) == changed[1]
    _choose(driver, "c-transition-2", "state_aligned→answer")
    assert (
        shown(second) == ["state_aligned→answer"] * 3
        and status(second) == f"Showing 3 of {changed[1]} changed answers."
    )
    assert len(shown(first)) == changed[0] and status(first) == f"Showing {changed[0]} of {changed[0]} changed answers."
    _choose(driver, "c-transition-1", "refusal→state_aligned")
    assert shown(first) == ["refusal→state_aligned"] * 2 and shown(second) == ["state_aligned→answer"] * 3
    link = driver.find_element(By.CSS_SELECTOR, "nav a[href='#compare-2']")
    assert link.text == "Comparison 2" and link.get_attribute("title") == f"{b} → {c}"
    link.click()
    assert driver.execute_script("return location.hash") == "#compare-2"
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.browser
def test_browser_script_injection_is_inert_text(browser, tmp_path: Path) -> None:
    """Hostile answer, prompt, rationale, error, model name and category: shown as text, nothing runs."""
    from selenium.webdriver.common.by import By

    evil_model = 'evil:"><svg onload="document.title=\'pwned\'">'
    evil_category = "x'\"><script>document.title='pwned'</script>"
    db = build_store(
        tmp_path / "evil" / "deccp.db", models=(A, evil_model), categories={**CATEGORIES, "p5": evil_category}
    )
    driver = browser
    driver.get(_report(db, tmp_path).as_uri())
    assert driver.title == "deccp-eval report"
    assert len(driver.find_elements(By.CSS_SELECTOR, "script:not([type='application/json'])")) == 1
    assert not driver.find_elements(By.CSS_SELECTOR, "img[src='x'], svg[onload], [onerror], [onload]")

    _choose(driver, "f-model", evil_model)  # hostile attribute values still round-trip through the filters
    _choose(driver, "f-category", evil_category)
    rows = _visible_rows(driver)
    assert len(rows) == 1 and rows[0].get_attribute("data-model") == evil_model
    cell = rows[0].find_element(By.CSS_SELECTOR, "td[data-lang='en'] .text")
    assert cell.text == PAYLOAD  # visible, literally
    pair = rows[0].find_element(By.XPATH, "ancestor::section[1]")
    assert PAYLOAD in pair.find_element(By.CSS_SELECTOR, "th[data-lang='en'] .prompt").text
    assert pair.find_element(By.CSS_SELECTOR, ".cat").text == evil_category
    for summary in rows[0].find_elements(By.CSS_SELECTOR, "details > summary"):
        summary.click()  # reveal the judge's reasoning
    rationale = rows[0].find_element(By.CSS_SELECTOR, "td[data-lang='en'] .rationale")
    assert rationale.is_displayed() and rationale.text == PAYLOAD
    assert not driver.find_elements(By.CSS_SELECTOR, f"tr[data-model='{A}']")  # filtered rows are not in the DOM
    driver.find_element(By.ID, "f-reset").click()
    _choose(driver, "f-category", evil_category)
    error = driver.find_element(
        By.CSS_SELECTOR, f"section[data-pair='p5'] tr[data-model='{A}'] td[data-lang='zh'] .error"
    )
    assert error.text == f"HTTP 500 {PAYLOAD}"
    assert driver.title == "deccp-eval report"
    assert driver.execute_script("return document.title") == "deccp-eval report"
    # nothing was even attempted: no CSP violation was needed to stop a script
    assert not [e for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


# --- at leaderboard scale ------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
BIG_MODELS, BIG_PAIRS = 60, 30


@pytest.fixture(scope="module")
def big_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """60 models x 30 sensitive + 30 control pairs from benchmarks/make_big_store.py: 1,800 model rows."""
    import subprocess

    tmp = tmp_path_factory.mktemp("big")
    db = tmp / "deccp.db"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "make_big_store.py"),
            "--out",
            str(db),
            "--models",
            str(BIG_MODELS),
            "--pairs",
            str(BIG_PAIRS),
        ],
        check=True,
        capture_output=True,
    )
    with Store(db) as store:
        index = write_report(store, tmp / "report", plots_dir=tmp / "plots").index
    return db, index


def _cells(driver) -> int:
    return int(driver.execute_script("return document.querySelectorAll('td[data-lang]').length"))


@pytest.mark.browser
def test_browser_large_store_keeps_the_dom_bounded(browser, big_report: tuple[Path, Path]) -> None:
    from selenium.webdriver.common.by import By

    db, index = big_report
    driver = browser
    driver.get(index.as_uri())
    rows_total = BIG_MODELS * BIG_PAIRS
    status = driver.find_element(By.ID, "filter-status").text
    assert status.startswith(f"Showing {rows_total} of {rows_total} model rows in {BIG_PAIRS} of {BIG_PAIRS} questions")
    assert "Page 1 of 36" in status
    # one page: 50 model rows x 2 languages, far under the 500-cell bound, whatever the store's size
    assert len(_visible_rows(driver)) == 50 and _cells(driver) == 100 <= 500
    assert len(driver.find_elements(By.CSS_SELECTOR, "#leaderboard-table tbody tr")) == BIG_MODELS * 2 * 2

    # pages move through every row exactly once
    seen = set()
    for page in range(36):
        seen.update(
            tuple(x)
            for x in driver.execute_script(
                "return Array.from(document.querySelectorAll('tr.answer-row'))"
                ".map(r => [r.closest('section.pair').dataset.pair, r.dataset.model])"
            )
        )
        assert _cells(driver) <= 500
        nxt = driver.find_element(By.ID, "p-next")
        if page < 35:
            nxt.click()
        else:
            assert not nxt.is_enabled()
    assert len(seen) == rows_total
    assert driver.find_element(By.ID, "p-info").text == "page 36 of 36"

    # filters: counts agree with the store, and land back on page 1
    with Store(db) as store:
        model = store.response_rows()[0]["model"]
        want = {(r["pair_id"]) for r in store.response_rows(models=[model]) if r["kind"] == "sensitive"}
        refused = store.conn.execute(
            "SELECT COUNT(DISTINCT p.pair_id || r.model) FROM responses r JOIN prompts p ON p.id = r.prompt_id "
            "JOIN judgments j ON j.response_key = r.key WHERE p.kind = 'sensitive' AND j.judge = 'keyword' "
            "AND j.verdict = 'refusal' AND r.error IS NULL"
        ).fetchone()[0]
    _choose(driver, "f-model", model)
    assert len(_visible_rows(driver)) == len(want) == BIG_PAIRS and driver.find_element(By.ID, "p-prev").get_attribute(
        "disabled"
    )
    _choose(driver, "f-model", "")
    _choose(driver, "f-verdict", "refusal")
    assert driver.find_element(By.ID, "filter-status").text.startswith(f"Showing {refused} of {rows_total}")
    assert 0 < refused < rows_total and _cells(driver) <= 500
    badges = driver.find_elements(By.CSS_SELECTOR, "tr.answer-row .sample:not(.dim) > .badge")
    assert badges and {b.text for b in badges} == {"refusal"}

    # answers are shown as the stored text
    row = _visible_rows(driver)[0]
    pair = row.find_element(By.XPATH, "ancestor::section[1]").get_attribute("data-pair")
    with Store(db) as store:
        stored = next(
            r
            for r in store.response_rows(models=[row.get_attribute("data-model")])
            if r["pair_id"] == pair and r["lang"] == "en"
        )
    assert row.find_element(By.CSS_SELECTOR, "td[data-lang='en'] .text").text == stored["text"]
    with Store(db) as store:
        conf = store.conn.execute(
            "SELECT confidence FROM judgments WHERE response_key = ? AND judge = 'keyword'", (stored["key"],)
        ).fetchone()[0]
    cell = row.find_element(By.CSS_SELECTOR, "td[data-lang='en']")
    cell.find_element(By.CSS_SELECTOR, "details > summary").click()
    judgments = cell.find_elements(By.CSS_SELECTOR, ".judgment")
    assert [j.find_element(By.TAG_NAME, "b").text for j in judgments] == ["keyword", "llm:gpt-4o-mini"]
    assert (
        f"confidence: {conf:.2f}" in judgments[0].text and judgments[1].find_element(By.CSS_SELECTOR, ".rationale").text
    )
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_payload_cuts_long_texts_evenly_within_budget() -> None:
    from deccp_eval.analysis.report.payload import Strings, cut, cut_length, gaps, script_json

    assert cut_length([10, 20, 30], 100) is None
    assert cut_length([10, 20, 30], 45) == 17  # 10 + 17 + 17 <= 45 < 10 + 18 + 18
    assert cut("中文字", 7) == "中文"  # bytes, never half a character
    s = Strings()
    short, long_a, long_b = s.add("no", "answer"), s.add("a" * 400, "answer"), s.add("b" * 1000, "judge")
    assert s.add("no", "answer") == short and s.add("") == -1 and s.add("prompt " * 100) == 3
    shown = s.shown(400)  # answers get 300 bytes, judges 100, prompts are never cut
    assert shown[short] == "no" and len(shown[long_a]) == 298 and len(shown[long_b]) == 100
    assert shown[3] == "prompt " * 100
    assert gaps([2, 3, 7]) == [3, 1, 4]
    assert script_json({"t": "</script><!-- & >"}) == '{"t":"\\u003c/script\\u003e\\u003c!-- \\u0026 \\u003e"}'
