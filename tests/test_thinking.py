"""`run --thinking on|off`, --reasoning-effort, --thinking-budget: sent to the backends and part of the key."""

from __future__ import annotations

from deccp_eval.backends.contract import BackendOptions, make_backend
from deccp_eval.base.schema import Request, SamplingParams


def _req(**params) -> Request:
    return Request(model="openai:m", prompt_id="p", text="q", params=SamplingParams(**params))


def test_unset_switches_leave_keys_alone_and_set_ones_change_them():
    assert _req().key == _req(thinking=None, reasoning_effort=None).key
    keys = {
        _req().key,
        _req(thinking=True).key,
        _req(thinking=False).key,
        _req(reasoning_effort="high").key,
        _req(thinking_budget=2048).key,
    }
    assert len(keys) == 5


def test_openai_and_anthropic_bodies_carry_them():
    opts = BackendOptions(api_key_env="none", base_url="http://127.0.0.1:9/v1")
    openai = make_backend("openai:m", opts)
    body = openai.body(_req(thinking=False, reasoning_effort="low"))
    assert body["reasoning_effort"] == "low" and body["chat_template_kwargs"] == {"enable_thinking": False}
    assert "reasoning_effort" not in openai.body(_req()) and "chat_template_kwargs" not in openai.body(_req())
    anthropic = make_backend("anthropic:claude", BackendOptions(api_key_env="none"))
    assert anthropic.body(_req(thinking_budget=2048, max_tokens=4096))["thinking"] == {
        "type": "enabled",
        "budget_tokens": 2048,
    }
    assert "thinking" not in anthropic.body(_req())


def test_local_chat_template_gets_enable_thinking(monkeypatch):
    """The hf path hands enable_thinking to apply_chat_template only when it is set."""
    import deccp_eval.backends.local_weights as local

    seen: list[dict] = []

    class Stop(Exception):
        pass

    class Tok:
        def apply_chat_template(self, messages, **kw):
            seen.append(kw)
            return "x"

        def __call__(self, *a, **k):
            raise Stop

    for thinking in (None, True, False):
        try:
            local.generate_with(object(), Tok(), [_req(thinking=thinking)])
        except Stop:
            pass
    assert [k.get("enable_thinking", "unset") for k in seen] == ["unset", True, False]
