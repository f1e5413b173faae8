"""Progress without a terminal: plain lines, rate-limited by an interval (a fake clock, no sleeping)."""

import io
import re

from deccp_eval import progress
from deccp_eval.progress import LineProgress


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
