"""The paired language-gap statistics against scipy/statsmodels and a published table."""

from __future__ import annotations

import math
import random

import pytest

from deccp_eval.analysis.language_gap import PairedTable, gap_of, mcnemar_exact, paired_interval

TABLES = [
    (59, 6, 16, 80),
    (1, 1, 7, 12),
    (10, 0, 0, 15),
    (3, 9, 1, 12),
    (0, 12, 0, 13),
    (20, 2, 3, 0),
    (5, 25, 0, 0),
    (0, 0, 0, 25),
]


@pytest.mark.parametrize("both,zh_only,en_only,neither", TABLES)
def test_mcnemar_exact_matches_statsmodels_and_scipy(both, zh_only, en_only, neither):
    sm = pytest.importorskip("statsmodels.stats.contingency_tables")
    from scipy.stats import binomtest

    # rows: English censored yes/no; columns: Chinese censored yes/no
    table = [[both, en_only], [zh_only, neither]]
    expected = sm.mcnemar(table, exact=True).pvalue
    assert mcnemar_exact(en_only, zh_only) == pytest.approx(expected, abs=1e-12)
    if en_only + zh_only:
        assert mcnemar_exact(en_only, zh_only) == pytest.approx(binomtest(en_only, en_only + zh_only, 0.5).pvalue)


def test_interval_matches_the_published_cavo_table():
    """Fagerland, Lydersen & Laake, Statistical Analysis of Contingency Tables (2017), ch. 8: complete
    response before/after consolidation therapy (Cavo et al., 2012), n = [[59, 6], [16, 80]]: Newcombe
    square-and-add interval -0.0621 (-0.1186 to -0.0046); exact McNemar p = 0.052."""
    g = gap_of(PairedTable(both=59, zh_only=6, en_only=16, neither=80))
    assert (round(g["gap"], 4), round(g["gap_lo"], 4), round(g["gap_hi"], 4)) == (-0.0621, -0.1186, -0.0046)
    assert round(g["mcnemar_p"], 3) == 0.052


@pytest.mark.parametrize("both,zh_only,en_only,neither", TABLES)
def test_interval_built_from_statsmodels_wilson_bounds(both, zh_only, en_only, neither):
    """Newcombe's method written out independently from statsmodels' Wilson intervals."""
    prop = pytest.importorskip("statsmodels.stats.proportion")
    t = PairedTable(both, en_only, zh_only, neither)
    n = t.n
    p1, p2 = (both + zh_only) / n, (both + en_only) / n
    l1, u1 = prop.proportion_confint(both + zh_only, n, method="wilson")
    l2, u2 = prop.proportion_confint(both + en_only, n, method="wilson")
    a = both * neither - zh_only * en_only
    margins = (both + zh_only) * (en_only + neither) * (both + en_only) * (zh_only + neither)
    psi = 0.0 if margins == 0 else ((a - n / 2) if a > n / 2 else 0.0 if a >= 0 else a) / math.sqrt(margins)
    lo = p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * psi * (p1 - l1) * (u2 - p2))
    hi = p1 - p2 + math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * psi * (p2 - l2) * (u1 - p1))
    got = paired_interval(t)
    assert got[0] == pytest.approx(max(-1, lo), abs=1e-9) and got[1] == pytest.approx(min(1, hi), abs=1e-9)
    assert got[0] <= p1 - p2 <= got[1]


def test_interval_covers_the_true_gap_about_95_percent_of_the_time():
    """Simulated pairs with a known difference: coverage near the nominal 95% (Newcombe's method is a
    little conservative), never far below it."""
    rng = random.Random(7)
    cells = (0.30, 0.05, 0.20, 0.45)  # both, en_only, zh_only, neither: true gap 0.15
    truth = cells[2] - cells[1]
    hits = 0
    runs = 2000
    for _ in range(runs):
        counts = [0, 0, 0, 0]
        for _ in range(40):
            u = rng.random()
            k = 0 if u < cells[0] else 1 if u < cells[0] + cells[1] else 2 if u < 1 - cells[3] else 3
            counts[k] += 1
        lo, hi = paired_interval(PairedTable(*counts))
        hits += lo <= truth <= hi
    assert 0.93 <= hits / runs <= 0.99


def test_no_pairs_and_no_discordant_pairs():
    assert all(math.isnan(x) for x in paired_interval(PairedTable(0, 0, 0, 0)))
    assert mcnemar_exact(0, 0) == 1.0
    g = gap_of(PairedTable(both=7, en_only=0, zh_only=0, neither=18))
    assert g["gap"] == 0 and g["mcnemar_p"] == 1.0 and g["gap_lo"] < 0 < g["gap_hi"]
