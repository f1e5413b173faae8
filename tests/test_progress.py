"""Progress without a terminal: plain lines, rate-limited by an interval (a fake clock, no sleeping)."""

import io
import re

from deccp_eval.base import progress
from deccp_eval.base.progress import LineProgress


def test_line_progress_prints_at_most_once_per_interval():
    now = [0.0]
    out = io.StringIO()
    line = LineProgress("generate hf:toy", 10, interval_s=30, stream=out, clock=lambda: now[0])
    for _ in range(4):  # 4 items in 20 s: under the interval, nothing printed
        now[0] += 5
        line.advance()
    assert out.getvalue() == ""
    now[0] += 10  # 30 s since start
    line.advance()
    assert out.getvalue().splitlines() == ["generate hf:toy: 5/10 (0.17/s, ETA 30s)"]
    now[0] += 29
    line.advance(2)
    assert len(out.getvalue().splitlines()) == 1  # 29 s since the last line
    now[0] += 1
    line.advance()
    assert out.getvalue().splitlines()[-1] == "generate hf:toy: 8/10 (0.13/s, ETA 15s)"


def test_bar_without_tty_prints_lines(capsys):
    # pytest's captured stderr is not a terminal: the line mode is what runs
    with progress.bar("judge keyword", 3, interval_s=0) as advance:
        for _ in range(3):
            advance(1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4  # one per item (interval 0) and the closing line
    assert all(re.fullmatch(r"judge keyword: \d/3 \([\d.]+/s, ETA \d+s\)", x) for x in lines), lines
    assert lines[-1].startswith("judge keyword: 3/3")


def test_bar_without_tty_quiet_for_short_steps(capsys):
    with progress.bar("judge keyword", 3) as advance:  # default 30 s interval: nothing in a short step
        advance(3)
    assert capsys.readouterr().err == ""


def test_line_progress_shows_answers_and_tokens_per_second():
    now = [0.0]
    out = io.StringIO()
    line = LineProgress("generate hf:x", 8, interval_s=10, stream=out, clock=lambda: now[0], unit="answers")
    now[0] += 10
    line.advance(4, tokens=400)
    assert out.getvalue().splitlines() == ["generate hf:x: 4/8 (0.40 answers/s, 40.0 tokens/s, ETA 10s)"]


def test_a_slow_batch_still_prints_every_interval():
    # no item finishes for 25 s (one long batch): the timer's ticks print the line anyway
    now = [0.0]
    out = io.StringIO()
    line = LineProgress("generate hf:x", 16, interval_s=10, stream=out, clock=lambda: now[0], unit="answers")
    for _ in range(25):
        now[0] += 1
        line.tick()
    assert out.getvalue().splitlines() == ["generate hf:x: 0/16 (0.00 answers/s, ETA ?)"] * 2


def test_bar_timer_prints_while_waiting(capsys):
    import time

    seen = ""
    with progress.bar("generate hf:x", 2, interval_s=0.05, unit="answers") as advance:
        for _ in range(400):  # one slow batch: no advance, until the timer has printed (or 20 s)
            seen += capsys.readouterr().err
            if seen:
                break
            time.sleep(0.05)
        advance(2, tokens=20)
    lines = (seen + capsys.readouterr().err).splitlines()
    assert lines[0].startswith("generate hf:x: 0/2 (0.00 answers/s")
    assert lines[-1].startswith("generate hf:x: 2/2 (") and "tokens/s" in lines[-1]
