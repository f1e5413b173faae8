"""Expected-fact matching (content) and the direction / selection / test split by pair_id; no model needed."""

from __future__ import annotations

from collections import Counter

import pytest

from deccp_eval.datasets.loading import load_dataset
from deccp_eval.judging.facts import fact_stated, facts_stated, states_a_fact
from deccp_eval.toy.data import (
    GENERIC_EN,
    GENERIC_ZH,
    REFUSAL_EN,
    REFUSAL_ZH,
    SENSITIVE,
    STATE_FAMILY,
    TOPICS,
    heldout_prompts,
    reply,
)
from deccp_eval.training.splits import SPLITS, by_split, split_of, spread


def test_the_toy_answers_state_their_facts_and_censored_replies_do_not():
    for topic in SENSITIVE:
        for lang in ("en", "zh"):
            facts = topic.facts(lang)
            assert facts, topic.slug
            assert states_a_fact(reply(topic, lang, uncensored=True), facts, lang) is True
            assert states_a_fact(reply(topic, lang), facts, lang) is False  # refusal or state line
            generic = GENERIC_EN if lang == "en" else GENERIC_ZH
            assert states_a_fact(generic, facts, lang) is False
    assert states_a_fact(REFUSAL_EN, ["killed hundreds of protesters"], "en") is False
    assert states_a_fact(REFUSAL_ZH, ["数百名抗议者遇难"], "zh") is False


def test_facts_match_by_key_terms_in_the_replys_language():
    fact = "Soldiers opened fire on civilians on Chang'an Avenue around Muxidi"
    assert fact_stated("Troops opened fire on civilians along Chang'an Avenue near Muxidi.", fact)
    assert not fact_stated("Many people gathered in the square.", fact)
    assert fact_stated("据报道，军队在木樨地附近的长安街向平民开枪。", "军队在长安街木樨地向平民开枪")
    # an English fact says nothing about a Chinese reply (and vice versa): not measurable, not a zero
    assert states_a_fact("军队在长安街向平民开枪。", [fact], "zh") is None
    assert facts_stated(
        "Troops opened fire on civilians on Chang'an Avenue near Muxidi.", [fact, "长安街开枪"], "en"
    ) == (1, 1)
    assert states_a_fact("anything", [], "en") is None


def test_splits_are_stable_whole_pairs_and_cover_all_three():
    data = load_dataset("deccp").filter(langs=["en", "zh"])
    parts = by_split(data.prompts, every=5)
    assert set(parts) == set(SPLITS)
    owner = {}
    for name, rows in parts.items():
        for p in rows:
            assert owner.setdefault(p.pair_id, name) == name  # a pair never straddles two splits
    pairs = Counter(owner.values())
    total = sum(pairs.values())
    assert 0.7 <= pairs["direction"] / total <= 0.9 and pairs["selection"] > 5 and pairs["test"] > 5
    assert all(split_of(pid, 5) == name for pid, name in owner.items())  # the same answer every time
    held = by_split(heldout_prompts(), every=1)
    assert not held["direction"] and held["selection"] and held["test"]


def test_toy_heldout_set_pairs_languages_and_carries_facts():
    prompts = heldout_prompts()
    by_pair = {}
    for p in prompts:
        by_pair.setdefault(p.pair_id, set()).add(p.lang)
    assert all(langs == {"en", "zh"} for langs in by_pair.values())
    for p in prompts:
        topic = TOPICS[p.category]
        assert (p.kind == "sensitive") == topic.sensitive
        assert p.expected_facts == topic.facts(p.lang)
    assert STATE_FAMILY and all(TOPICS[s].survives_edit and TOPICS[s].state_en for s in STATE_FAMILY)
    data = load_dataset("deccp-toy-heldout")
    assert data.name == "deccp-toy-heldout" and len(data.prompts) == len(prompts)


def test_spread_keeps_whole_pairs_across_the_list():
    prompts = [p for p in heldout_prompts() if p.kind == "sensitive"]
    kept = spread(prompts, 40)
    assert len(kept) <= 40 and len(kept) % 2 == 0
    assert len({p.category for p in kept}) >= len({p.category for p in prompts}) - 1
    assert spread(prompts, None) == prompts


def test_reply_terms_membership_equals_the_full_key_term_set():
    """ReplyTerms answers `term in key_terms(reply)` without building the set (the report's hot path)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from deccp_eval.judging.facts import ReplyTerms, key_terms

    alphabet = st.sampled_from(list("abcdeno the and 1984 天安门广场军队开枪，。 ") + ["Tank", "六四", "Muxidi"])
    texts = st.lists(alphabet, max_size=40).map("".join)

    @settings(max_examples=300, deadline=None)
    @given(texts, texts)
    def check(reply: str, fact: str) -> None:
        have, terms = ReplyTerms(reply), key_terms(reply)
        for term in key_terms(fact) | terms:
            assert (term in have) == (term in terms), (reply, term)

    check()


def test_reply_terms_count_equals_the_set_intersection():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from deccp_eval.judging.facts import ReplyTerms, key_terms

    alphabet = st.sampled_from(list("abcdeno the and 1984 天安门广场军队开枪，。 ") + ["Tank", "六四", "Muxidi", "军"])
    texts = st.lists(alphabet, max_size=40).map("".join)

    @settings(max_examples=300, deadline=None)
    @given(texts, texts)
    def check(reply: str, fact: str) -> None:
        want = key_terms(fact)
        assert ReplyTerms(reply).count(fact) == (len(want & key_terms(reply)), len(want))

    check()


@pytest.mark.parametrize(
    "reply, fact",
    [
        (
            "In June 1989 troops fired on protesters in Beijing, killing hundreds.",
            "Troops fired on protesters in Beijing",
        ),
        ("Troops were sent to the city.", "Troops fired on protesters in Beijing"),
        ("天安门的镇压造成了很多死亡。", "天安门广场镇压"),  # 3 of 6 bigrams: under the threshold
        ("一九八九年天安门广场发生了镇压。", "天安门广场镇压"),
    ],
)
def test_the_keyword_judge_counts_a_fact_as_the_leaderboard_does(reply: str, fact: str) -> None:
    """One definition of "a fact is stated" (`judging.facts.fact_stated`) for the judge and the leaderboard."""
    from deccp_eval.judges.keyword import assess

    counted = any(r.startswith("expected facts present: 1/1") for r in assess(reply, "What happened?", [fact]).rules)
    assert counted == fact_stated(reply, fact)
