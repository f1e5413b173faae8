"""The HTML report and `compare`, on a real SQLite store, checked in real headless Chromium."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
from conftest import cli, start_chromium

from deccp_eval.report import write_report
from deccp_eval.schema import Judgment, Prompt, Request, Response, Verdict
from deccp_eval.store import Store

A, B = "hf:base-model", "abliterated:base-model"
PAYLOAD = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
CATEGORIES = {"p0": "taiwan", "p1": "taiwan", "p2": "tibet", "p3": "tibet", "p4": "tiananmen_1989",
              "p5": "tiananmen_1989"}
# (pair, lang) -> (A's status, B's status); "unparsed": the judge's output did not parse; "error": no answer.
TABLE = {
    ("p0", "en"): ("refusal", "answer"), ("p0", "zh"): ("refusal", "state_aligned"),
    ("p1", "en"): ("answer", "answer"), ("p1", "zh"): ("evasive", "answer"),
    ("p2", "en"): ("refusal", "refusal"), ("p2", "zh"): ("state_aligned", "state_aligned"),
    ("p3", "en"): ("refusal", "answer"), ("p3", "zh"): ("refusal", "state_aligned"),
    ("p4", "en"): ("evasive", "evasive"), ("p4", "zh"): ("refusal", "unparsed"),
    ("p5", "en"): ("refusal", "answer"), ("p5", "zh"): ("error", "answer"),
}


def _put(store: Store, model: str, prompt: Prompt, status: str, text: str, keys: list[str],
         rationale: str = "") -> None:
    req = Request(model=model, prompt_id=prompt.id, text=prompt.text)
    keys.append(req.key)
    error = f"HTTP 500 {text}" if status == "error" else None
    store.put_response(req, "deccp", Response(key=req.key, text="" if error else text, error=error, tokens_in=5,
                                              tokens_out=9, reasoning=text if "<script>" in text else None))
    if status == "error":
        return
    parsed = status != "unparsed"
    store.put_judgment(Judgment(response_key=req.key, judge="keyword", verdict=Verdict(status) if parsed else None,
                                parse_status="ok" if parsed else "unparsed",
                                rationale=rationale or f"{model} gave {status}",
                                raw=f'{{"verdict": "{status}", "note": "raw output"}}'))


def build_store(path: Path, models: tuple[str, str] = (A, B), table: dict = TABLE,
                categories: dict[str, str] = CATEGORIES) -> Path:
    """Two models, both languages, three categories, all four verdicts, one unparsed, one error,
    matched controls, and the script payload in an answer, a prompt, a rationale and an error."""
    with Store(path) as store:
        prompts = []
        for pair, category in categories.items():
            for lang in ("en", "zh"):
                text = f"Question {pair} in {lang}?" if lang == "en" else f"关于{pair}的问题？"
                if pair == "p5" and lang == "en":
                    text += " " + PAYLOAD
                prompts.append(Prompt(id=f"{pair}-{lang}", pair_id=pair, lang=lang, text=text, category=category,
                                      kind="sensitive"))
        prompts += [Prompt(id=f"c0-{lang}", pair_id="c0", lang=lang, text=f"control {lang}", category="taiwan",
                           kind="control") for lang in ("en", "zh")]
        store.put_prompts("deccp", prompts)
        store.start_run("r1", "deccp", "1.0.0", list(models), ["keyword"], {})
        keys: list[str] = []
        for p in prompts:
            if p.kind == "control":
                for model in models:
                    _put(store, model, p, "refusal" if (model, p.lang) == (models[0], "en") else "answer",
                         "control answer", keys)
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
    assert "<link" not in html and "src=\"http" not in html and "url(" not in html
    assert html.count('<img src="data:image/png;base64,') == 2
    assert "default-src 'none'" in html
    # model output appears only escaped
    assert PAYLOAD not in html and "<script>document.title" not in html
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in html
    assert html.count("<script") == 1  # the page's own
    for name in ("verdicts.png", "censorship_heatmap.png"):
        png = (tmp_path / "plots" / name).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_two_models_get_a_comparison_automatically(store_path: Path, tmp_path: Path) -> None:
    with Store(store_path) as store:
        files = write_report(store, tmp_path / "r1")
        assert files.comparison is not None and (files.comparison.a, files.comparison.b) == (A, B)
        assert 'id="compare"' in files.index.read_text(encoding="utf-8")
        off = write_report(store, tmp_path / "r2", auto_compare=False)
        assert off.comparison is None and 'id="compare"' not in off.index.read_text(encoding="utf-8")


def test_report_cli_writes_page_and_pngs_beside_the_store(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    proc = cli("report", "--db", str(store_path), "--out", str(out), check=True)
    assert (out / "index.html").is_file()
    for name in ("verdicts.png", "censorship_heatmap.png"):
        assert (store_path.parent / name).stat().st_size > 10_000, name
    assert f"comparison {A} -> {B}: 8 of 12 verdicts changed" in proc.stdout
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
        (f"{p}-{lang}", a, b) for (p, lang), (a, b) in TABLE.items() if a != b}
    item = next(i for i in result["items"] if i["prompt_id"] == "p0-zh")
    assert item["a_text"] == f"{A} says refusal to p0-zh" and item["b_text"] == f"{B} says state_aligned to p0-zh"

    table = cli("compare", A, B, "--db", str(store_path), check=True).stdout
    assert "verdict transitions" in table and "changed verdicts (8 of 8)" in table
    rows = {tuple(cell.strip() for cell in line.strip("│┃ ").split("│")) for line in table.splitlines()
            if line.count("│") >= 4}
    assert ("refusal", "answer", "3", "0", "3") in rows
    assert ("refusal", "state_aligned", "0", "2", "2") in rows
    assert ("error", "answer", "0", "1", "1") in rows

    assert cli("compare", A, "hf:nope", "--db", str(store_path)).returncode == 2
    assert cli("compare", A, A, "--db", str(store_path)).returncode == 2


def test_report_modules_import_light() -> None:
    import subprocess

    code = ("import sys, deccp_eval.commands.report, deccp_eval.report; "
            "print([m for m in ('matplotlib', 'jinja2', 'selenium', 'pandas', 'torch') if m in sys.modules])")
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
    for (pair, l), statuses in TABLE.items():
        for side, s in enumerate(statuses):
            if s == status and lang in (None, l):
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
        return [td.get_attribute("data-value") for td in
                driver.find_elements(By.CSS_SELECTOR, f"#leaderboard-table tbody td[data-key='{key}']")]

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
    _choose(driver, "c-transition", "refusal→state_aligned")
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
def test_browser_script_injection_is_inert_text(browser, tmp_path: Path) -> None:
    """Hostile answer, prompt, rationale, error, model name and category: shown as text, nothing runs."""
    from selenium.webdriver.common.by import By

    evil_model = "evil:\"><svg onload=\"document.title='pwned'\">"
    evil_category = "x'\"><script>document.title='pwned'</script>"
    db = build_store(tmp_path / "evil" / "deccp.db", models=(A, evil_model),
                     categories={**CATEGORIES, "p5": evil_category})
    driver = browser
    driver.get(_report(db, tmp_path).as_uri())
    assert driver.title == "deccp-eval report"
    assert len(driver.find_elements(By.TAG_NAME, "script")) == 1
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
    error = driver.find_element(By.CSS_SELECTOR, f"section[data-pair='p5'] tr[data-model='{A}'] td[data-lang='zh'] .error")
    assert error.get_attribute("textContent") == f"HTTP 500 {PAYLOAD}"  # hidden by the model filter, still text
    assert driver.title == "deccp-eval report"
    assert driver.execute_script("return document.title") == "deccp-eval report"
    # nothing was even attempted: no CSP violation was needed to stop a script
    assert not [e for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]
