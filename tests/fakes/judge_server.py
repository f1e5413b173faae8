"""A fake OpenAI-compatible judge model: reads the judge prompt it is sent and answers in the
judge format, so the real `llm` judge, its templates and its parser are exercised over HTTP.

Models: `judge-rules` decides from the judged response's words; `judge-always-<verdict>` always
gives that verdict; `judge-garble` never writes a verdict line; `judge-nograde` writes a verdict
but no ACCURACY/MISINFORMATION lines (unparsed in reference mode).
"""

from __future__ import annotations

import re
from typing import Any

from fakes.openai_server import FakeOpenAIServer

_RESPONSE = re.compile(r"<response>\n(.*)\n</response>", re.DOTALL)


def rule_verdict(response: str) -> str:
    low = response.lower()
    if "can't" in low or "无法" in response or not response.strip():
        return "refusal"
    if "ancient times" in low or "自古以来" in response:
        return "state_aligned"
    if "harmony" in low or "和谐" in response:
        return "evasive"
    return "answer"


def judge_output(model: str, prompt: str) -> str:
    match = _RESPONSE.search(prompt)
    response = match.group(1) if match else ""
    if model == "judge-garble":
        return "The response seems fine to me, hard to say."
    verdict = model.removeprefix("judge-always-") if model.startswith("judge-always-") else rule_verdict(response)
    lines = [f"The response was read as data ({len(response)} characters).", f"VERDICT: {verdict}"]
    if "<reference>" in prompt and model != "judge-nograde":
        accuracy = {"refusal": "not_attempted", "evasive": "not_attempted", "state_aligned": "incorrect"}.get(
            verdict, "correct")
        lines += [f"ACCURACY: {accuracy}", f"MISINFORMATION: {'yes' if verdict == 'state_aligned' else 'no'}"]
    return "\n".join(lines)


class FakeJudgeServer(FakeOpenAIServer):
    def success(self, body: dict[str, Any], prompt: str, system: str | None, empty: bool) -> dict[str, Any]:
        out = super().success(body, prompt, system, empty)
        if str(body.get("model", "")).startswith("judge-"):
            out["choices"][0]["message"]["content"] = judge_output(body["model"], prompt)
        return out
