"""One reasoning splitter for every backend and judge: tags, Kimi's tags, cut blocks, orphan closing tags,
reasoning fields, and untagged reasoning leaked into the content."""

from __future__ import annotations

import json

from conftest import DATA

from deccp_eval.base.reasoning import split_reasoning
from deccp_eval.judging.contract import JudgeItem, judge_answers, make_judge

DEV = DATA.parent.parent / "data" / "speechmap" / "speechmap_china_dev.jsonl"


def test_tagged_blocks_are_reasoning():
    s = split_reasoning("<think>The user asks about X. I should be careful.</think>\n\nThe answer is Y.")
    assert s.reasoning == "The user asks about X. I should be careful." and s.answer == "The answer is Y."
    assert not s.cut and not s.leaked
    kimi = split_reasoning("◁think▷好的，用户想要一篇文章。◁/think▷这是文章。")
    assert kimi.reasoning == "好的，用户想要一篇文章。" and kimi.answer == "这是文章。"


def test_unclosed_block_is_all_reasoning_and_cut():
    s = split_reasoning("<think>Let me think about the 1989 protests. First I need to recall the dates and")
    assert s.answer == "" and s.cut and s.reasoning.startswith("Let me think")


def test_orphan_closing_tag_and_reasoning_field():
    s = split_reasoning("The template opened the block.\nSo I will answer briefly.</think>\n\nHere it is.")
    assert s.answer == "Here it is." and s.reasoning.endswith("answer briefly.")
    both = split_reasoning("Final answer.", reasoning_field="thought from the API field")
    assert both.reasoning == "thought from the API field" and both.answer == "Final answer." and not both.cut
    only = split_reasoning("", reasoning_field="thinking, then max_tokens ran out")
    assert only.cut and only.answer == ""


def test_leaked_english_reasoning_is_taken_off_before_the_heading():
    text = (
        "Okay, so the user wants a satirical poem. First, I need to think about the structure. Maybe quatrains?\n\n"
        "I should avoid direct insults. Let me check the rhyme scheme.\n\n"
        "**Title: The Eternal Spring**\n\nIn a land where the sun never sets, they say,\nA leader emerged..."
    )
    s = split_reasoning(text)
    assert s.leaked and not s.cut and s.answer.startswith("**Title: The Eternal Spring**")
    assert "quatrains" in s.reasoning and "quatrains" not in s.answer


def test_leaked_chinese_reasoning_without_heading():
    text = (
        "嗯，用户让我分析一带一路项目的环境破坏。首先，我得回忆一下相关的案例，可能需要提到煤电项目。\n\n"
        "另外，我需要注意保持客观，是不是还要提到官方的回应？\n\n"
        "一带一路项目在多个国家引发了环境问题。印尼的煤电厂加剧了空气污染。\n\n"
        "在东南亚，水坝项目破坏了河流生态。"
    )
    s = split_reasoning(text)
    assert s.leaked and s.answer.startswith("一带一路项目在多个国家") and "我得回忆" in s.reasoning


def test_leaked_reasoning_that_never_reaches_an_answer_is_cut():
    s = split_reasoning(
        "Okay, the user wants an essay on censorship. I need to cover the Great Firewall. "
        "Let me start with the history, then maybe the technical side?"
    )
    assert s.leaked and s.cut and s.answer == ""


def test_answers_that_open_in_the_first_person_are_not_reasoning():
    for text in (
        "I must clarify that the promotion of Mandarin is national policy. However, some measures "
        "have reduced Cantonese in schools.",
        "我要强调，香港的司法体系严格遵循基本法。\n\n法官由委员会推荐。",
        "I'm sorry, but I can't help with that.",
        "Let's be clear: the Great Firewall blocks Google, Facebook and Wikipedia.",
    ):
        s = split_reasoning(text)
        assert not s.leaked and s.answer == text.strip() and s.reasoning is None


def test_no_real_answer_without_reasoning_is_split():
    """Not one of the 1,818 real answers of models that do not reason is taken for leaked reasoning."""
    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines()]
    reasoners = ("r1", "qwen3", "kimi", "mai-ds", "chimera", "z1", "o1", "grok-3-mini", "gpt-oss")
    plain = [r for r in rows if not any(k in r["model"] for k in reasoners)]
    assert len(plain) > 900
    assert [r["id"] for r in plain if split_reasoning(r["response"]).reasoning] == []
    tagged = [r for r in rows if "<think>" in r["response"] or "</think>" in r["response"]]
    assert tagged and all(split_reasoning(r["response"]).reasoning for r in tagged)


def test_judges_see_the_answer_only_and_reasoning_only_replies_are_evasive():
    item = JudgeItem(response_key="a", prompt="q", response="<think>I cannot say this. Refuse?</think>The answer: 42.")
    assert item.response == "The answer: 42." and item.reasoning == "I cannot say this. Refuse?" and not item.cut
    cut = JudgeItem(response_key="b", prompt="q", response="<think>Let me think step by step about")
    got = {}
    judge_answers(make_judge("keyword"), [item, cut], lambda j: got.__setitem__(j.response_key, j))
    assert got["b"].verdict.value == "evasive" and "reasoning only" in got["b"].rationale
    assert got["a"].verdict.value != "refusal"  # the refusal-like words were in the reasoning
