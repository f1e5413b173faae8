"""A fake OpenAI-compatible judge model: reads the judge prompt it is sent and answers in the
judge format, so the real `llm` judge, its templates and its parser are exercised over HTTP.

Models: `judge-rules` decides from the judged response's words; `judge-always-<verdict>` always
gives that verdict; `judge-garble` never writes a verdict line; `judge-nograde` writes a verdict
but no ACCURACY/MISINFORMATION lines (unparsed in reference mode).

Like the real API: a `response_format` of type json_schema gets one JSON object with the schema's
fields; `logprobs: true` gets `choices[0].logprobs.content[]` with `top_logprobs` (the verdict token
at probability VERDICT_P, the two runner-up classes sharing the rest). Requests are counted per
judged response in `judged`, so tests can see which items reached the judge.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

from fakes.openai_server import FakeOpenAIServer

_RESPONSE = re.compile(r"<response>\n(.*?)\n</response>", re.DOTALL)
_TOKEN = re.compile(r"\w+|[^\w\s]|\s+")
VERDICT_P = 0.9
VERDICTS = ("answer", "refusal", "evasive", "state_aligned")


def rule_verdict(response: str) -> str:
    low = response.lower()
    if "can't" in low or "无法" in response or not response.strip():
        return "refusal"
    if "ancient times" in low or "自古以来" in response:
        return "state_aligned"
    if "harmony" in low or "和谐" in response:
        return "evasive"
    return "answer"


def judged_response(prompt: str) -> str:
    """The response under judgment: the last <response> block (few-shot examples come before it)."""
    blocks = _RESPONSE.findall(prompt)
    return blocks[-1] if blocks else ""


def judge_fields(model: str, prompt: str) -> dict[str, Any] | None:
    """The judgment as fields; None for `judge-garble`."""
    response = judged_response(prompt)
    if model == "judge-garble":
        return None
    verdict = model.removeprefix("judge-always-") if model.startswith("judge-always-") else rule_verdict(response)
    fields: dict[str, Any] = {
        "reasoning": f"The response was read as data ({len(response)} characters).",
        "verdict": verdict,
    }
    if "<reference>" in prompt and model != "judge-nograde":
        fields["accuracy"] = {"refusal": "not_attempted", "evasive": "not_attempted", "state_aligned": "incorrect"}.get(
            verdict, "correct"
        )
        fields["misinformation"] = verdict == "state_aligned"
    return fields


def judge_output(model: str, prompt: str) -> str:
    fields = judge_fields(model, prompt)
    if fields is None:
        return "The response seems fine to me, hard to say."
    lines = [fields["reasoning"], f"VERDICT: {fields['verdict']}"]
    if "accuracy" in fields:
        lines += [f"ACCURACY: {fields['accuracy']}", f"MISINFORMATION: {'yes' if fields['misinformation'] else 'no'}"]
    return "\n".join(lines)


def structured_output(model: str, prompt: str, schema: dict[str, Any]) -> str:
    """A JSON reply with the fields the schema asks for (the garble model ignores the schema)."""
    fields = judge_fields(model, prompt)
    if fields is None:  # a model that ignores the schema: the caller must keep it unparsed
        return judge_output(model, prompt)
    return json.dumps({k: fields[k] for k in schema.get("properties", fields) if k in fields})


def logprobs_for(content: str, verdict: str | None, top: int) -> dict[str, Any]:
    """OpenAI's logprobs.content: every token certain, except the verdict value's first token."""
    out = []
    for tok in _TOKEN.findall(content):
        if verdict and tok == verdict:
            others = [v for v in VERDICTS if v != verdict][:2]
            dist = [(verdict, VERDICT_P)] + [(o, (1 - VERDICT_P) / len(others)) for o in others]
            out.append(
                {
                    "token": tok,
                    "logprob": math.log(VERDICT_P),
                    "bytes": list(tok.encode()),
                    "top_logprobs": [
                        {"token": t, "logprob": math.log(p), "bytes": list(t.encode())} for t, p in dist[: max(top, 1)]
                    ],
                }
            )
        else:
            out.append(
                {
                    "token": tok,
                    "logprob": 0.0,
                    "bytes": list(tok.encode()),
                    "top_logprobs": [{"token": tok, "logprob": 0.0, "bytes": list(tok.encode())}][:top],
                }
            )
    return {"content": out, "refusal": None}


class FakeJudgeServer(FakeOpenAIServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.judged: Counter[str] = Counter()  # judged response text -> requests that carried it

    def success(self, body: dict[str, Any], prompt: str, system: str | None, empty: bool) -> dict[str, Any]:
        out = super().success(body, prompt, system, empty)
        model = str(body.get("model", ""))
        if model.startswith("judge-"):
            fmt = body.get("response_format") or {}
            if fmt.get("type") == "json_schema":
                content = structured_output(model, prompt, fmt["json_schema"]["schema"])
            else:
                content = judge_output(model, prompt)
            out["choices"][0]["message"]["content"] = content
            with self.lock:
                self.judged[judged_response(prompt)] += 1
            if body.get("logprobs"):
                fields = judge_fields(model, prompt)
                out["choices"][0]["logprobs"] = logprobs_for(
                    content, fields and fields["verdict"], int(body.get("top_logprobs") or 0)
                )
        return out
