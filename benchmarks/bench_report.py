"""The report at leaderboard scale: `deccp-eval report` on a 100-model x 616-prompt synthetic store
(benchmarks/make_big_store.py), then the page in real headless Chromium from file://.

Prints: build time (target <= 10 s on 2 cores) with `report_build_s=` and `ratio_to_leaderboard=` (the
build over `deccp-eval leaderboard` on the same store, both whole processes), index.html size (<= 10 MB),
time from navigation start to the leaderboard painted (Element Timing on its first cell; <= 2 s) and to the
script's first render of the prompt browser (`report-ready` mark), the time to apply each filter
in the prompt browser until the next frame (<= 300 ms), and the most answer cells in the DOM at
once. The last line holds the figures and `worst_ratio` (largest figure / its target; <= 1 passes).
Run: .venv/bin/python benchmarks/bench_report.py [--db /tmp/big/deccp.db] [--models 100] [--smoke]
(`--smoke`: a 3-model store of 2 sensitive and 2 control pairs; the same build, page and filters.)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, parse

LEADERBOARD_JS = """
const done = arguments[arguments.length - 1];
new PerformanceObserver((list) => {
  const e = list.getEntries().find((x) => x.identifier === "leaderboard");
  if (e) done(e.renderTime || e.loadTime);
}).observe({type: "element", buffered: true});
setTimeout(() => done(null), 5000);
"""

FILTER_JS = """
const [id, value, done] = arguments;
const select = document.getElementById(id);
const t0 = performance.now();
select.value = value;
select.dispatchEvent(new Event("change"));
requestAnimationFrame(() => setTimeout(() => done([performance.now() - t0,
  document.querySelectorAll("td[data-lang]").length, document.querySelectorAll(".sample").length]), 0));
"""


def browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


def cli(*args: str) -> None:
    """`deccp-eval ARGS` as a whole process, quiet unless it fails."""
    proc = subprocess.run([sys.executable, "-m", "deccp_eval.cli", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(
            f"deccp-eval {args[0]} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=None, help="an existing big store (default: build one)")
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=0, help="pairs per kind in the built store (0: all)")
    args = parse(ap, models=3, pairs=2)
    tmp = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        measure(args, tmp)
    finally:
        if args.smoke:
            shutil.rmtree(tmp, ignore_errors=True)


def measure(args: argparse.Namespace, tmp: Path) -> None:
    db = args.db
    if db is None:
        db = tmp / "deccp.db"
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "make_big_store.py"),
                "--out",
                str(db),
                "--models",
                str(args.models),
                "--pairs",
                str(args.pairs),
            ],
            check=True,
        )
    out = tmp / "report"
    t0 = time.perf_counter()
    cli("report", "--db", str(db), "--out", str(out), "--plots-dir", str(tmp / "plots"))
    build_s = time.perf_counter() - t0
    # The baseline, measured the same way on the same store: the plain leaderboard (a whole process,
    # as a user runs it), so the ratio says what the page costs beyond the numbers it shows.
    t0 = time.perf_counter()
    cli("leaderboard", "--db", str(db), "--out", str(tmp / "leaderboard.csv"))
    leaderboard_s = time.perf_counter() - t0
    print(
        f"report_build_s={build_s:.1f} leaderboard_s={leaderboard_s:.1f} "
        f"ratio_to_leaderboard={build_s / leaderboard_s:.2f} (target: report_build_s <= 10)"
    )
    index = out / "index.html"
    size_mb = index.stat().st_size / 1e6
    print(f"report built in {build_s:.1f}s; index.html {size_mb:.2f} MB")

    driver = browser(tmp / "profile")
    try:
        driver.set_script_timeout(30)
        driver.get(index.as_uri())
        shown = driver.execute_async_script(LEADERBOARD_JS)
        ready = driver.execute_script(
            "const m = performance.getEntriesByName('report-ready'); return m.length ? m[0].startTime : null"
        )
        nav = driver.execute_script("return performance.getEntriesByType('navigation')[0].toJSON()")
        print(
            f"leaderboard painted at {shown} ms; prompt browser rendered at {ready} ms; "
            f"DOMContentLoaded {nav['domContentLoadedEventEnd']:.0f} ms, load {nav['loadEventEnd']:.0f} ms"
        )
        models = driver.execute_script(
            "return Array.from(document.querySelectorAll('#f-model option')).map(o => o.value).filter(Boolean)"
        )
        cats = driver.execute_script(
            "return Array.from(document.querySelectorAll('#f-category option')).map(o => o.value).filter(Boolean)"
        )
        steps = [
            ("f-verdict", "refusal"),
            ("f-lang", "zh"),
            ("f-category", cats[len(cats) // 2]),
            ("f-model", models[len(models) // 2]),
            ("f-category", ""),
            ("f-verdict", "answer"),
            ("f-lang", ""),
            ("f-model", ""),
            ("f-verdict", ""),
        ]
        times, cells = [], []
        for select, value in steps:
            ms, tds, samples = driver.execute_async_script(FILTER_JS, select, value)
            times.append(ms)
            cells.append(tds)
            print(f"  filter {select}={value!r}: {ms:.0f} ms, {tds} answer cells ({samples} answers) in the DOM")
        status = driver.execute_script("return document.getElementById('filter-status').textContent")
        print(f"  {status}")
        sample = driver.execute_script(
            "return document.querySelector('tr.answer-row td[data-lang] .sample').textContent.slice(0, 300)"
        )
        print(f"  first answer shown: {sample!r}")
    finally:
        driver.quit()
    filter_ms = max(times)
    ratios = {"build": build_s / 10, "size": size_mb / 10, "leaderboard": shown / 2000, "filter": filter_ms / 300}
    print(
        f"report_build_s={build_s:.1f} ratio_to_leaderboard={build_s / leaderboard_s:.2f} size_mb={size_mb:.2f} "
        f"leaderboard_ms={shown:.0f} ready_ms={ready:.0f} "
        f"filter_ms_max={filter_ms:.0f} filter_ms_median={statistics.median(times):.0f} "
        f"max_answer_cells={max(cells)} worst_ratio={max(ratios.values()):.2f}"
    )


if __name__ == "__main__":
    main()
