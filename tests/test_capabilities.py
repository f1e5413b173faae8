"""What a backend can do is declared on its class (capability flags, `derived_from`) and model aliases
are registered: the core and the judges act on those, so a third-party backend or alias gets the same
treatment as a built-in one."""

from __future__ import annotations

from pathlib import Path

import pytest

from deccp_eval.backends.contract import Backend, BackendOptions, make_backend
from deccp_eval.backends.local_weights import ModelAlias, model_alias, resolve_path
from deccp_eval.base import pluginmanager
from deccp_eval.base.errors import UsageError
from deccp_eval.base.hookspecs import hookimpl
from deccp_eval.base.schema import Prompt, Response, SamplingParams
from deccp_eval.datasets.loading import Dataset
from deccp_eval.judging.contract import JudgeItem, make_judge
from deccp_eval.run import runner
from deccp_eval.store.db import Store

SENT: list = []


class Capable(Backend):
    """A third-party API backend that declares structured output and log-probs."""

    name = "capable"
    structured_output = True
    logprobs = True

    def generate(self, requests, on_response):
        for r in requests:
            SENT.append(r)
            on_response(Response(key=r.key, text='{"reasoning": "r", "verdict": "answer"}'))


class Plain(Capable):
    """The same, declaring nothing."""

    name = "plain-api"
    structured_output = False
    logprobs = False


class Edited(Capable):
    """A backend whose models are made from another (as `abliterated:` is from `hf:`)."""

    name = "edited"

    @classmethod
    def derived_from(cls, model: str) -> str | None:
        return f"capable:{model}"


class ThirdParty:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @hookimpl
    def register_backends(self, register):
        for cls in (Capable, Plain, Edited):
            register(cls)

    @hookimpl
    def register_model_aliases(self, register):
        register(
            ModelAlias(
                name="tiny-alias",
                path=lambda: self.folder,
                version=lambda: "tiny-v7",
                description="a folder made on demand",
            )
        )


@pytest.fixture()
def plugin(tmp_path: Path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "qwen2"}')
    pluginmanager.register_plugin(ThirdParty(folder), name="test-capabilities")
    SENT.clear()
    try:
        yield folder
    finally:
        pluginmanager.unregister_plugin("test-capabilities")


def test_the_llm_judge_reads_capabilities_off_the_backend_class(plugin) -> None:
    item = JudgeItem(response_key="k", prompt="Is Taiwan a country?", response="It has its own government.")
    capable, plain = make_judge("llm:capable:m"), make_judge("llm:plain-api:m")
    assert capable.structured and capable.top_logprobs == 5
    assert not plain.structured and plain.top_logprobs is None
    assert capable.template_hash != plain.template_hash  # structured or not: another judgment key
    got = []
    capable.judge([item], got.append)
    assert SENT[0].params.json_schema is not None and SENT[0].params.top_logprobs == 5
    assert got[0].verdict.value == "answer"
    off = make_judge("llm:capable:m", BackendOptions(extra={"judge_structured": False, "judge_logprobs": 0}))
    assert not off.structured and off.top_logprobs is None


def test_a_model_alias_resolves_for_every_local_backend(
    plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DECCP_EVAL_CACHE", str(tmp_path / "cache"))
    assert resolve_path("tiny-alias") == str(plugin) and model_alias("Org/Model") is None
    by_alias = make_backend("hf:tiny-alias").fingerprint()
    by_path = make_backend(f"hf:{plugin}").fingerprint()
    assert by_alias != by_path  # the spec and the alias's version are in it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny-alias").mkdir()  # a folder of that name wins over the alias
    (tmp_path / "tiny-alias" / "config.json").write_text("{}")
    assert model_alias("tiny-alias") is None and resolve_path("tiny-alias") == "tiny-alias"
    assert make_backend("hf:tiny-alias").fingerprint() != by_alias


def test_abliterated_alias_needs_a_ready_copy_or_a_direction(plugin: Path) -> None:
    with pytest.raises(UsageError, match="not a saved folder"):
        make_backend("abliterated:tiny-alias").check()  # this alias declares no abliterated copy


def test_reports_pair_a_model_with_what_its_backend_says_it_came_from(plugin) -> None:
    from deccp_eval.analysis.report.compare import auto_pairs

    none = {}.get
    assert auto_pairs(["edited:m", "capable:m", "capable:n"], base_of=none) == [("capable:m", "edited:m")]
    assert auto_pairs(["edited:z", "capable:a"], base_of=none) == [("capable:a", "edited:z")]  # derived second
    assert auto_pairs(["abliterated:m@somewhere/direction.safetensors", "hf:m"], base_of=none) == [
        ("hf:m", "abliterated:m@somewhere/direction.safetensors")
    ]  # the direction need not be on this machine
    assert auto_pairs(["gone:m", "hf:m", "hf:n"], base_of=none) == []  # a backend not installed here


def test_a_dry_run_never_sends_through_a_backend_that_does_not_price_one(plugin, tmp_path: Path) -> None:
    data = Dataset(
        name="dry",
        version="1",
        prompts=[Prompt(id="q", pair_id="q", lang="en", category="c", kind="sensitive", text="What happened?")],
    )
    options = BackendOptions(dry_run=True)
    requests = runner.plan(data, "capable:m", SamplingParams(max_tokens=4))
    with Store(tmp_path / "d.db") as store:
        store.put_prompts(data.name, data.prompts)
        run_id = runner.new_run_id()
        store.start_run(run_id, data.name, data.version, ["capable:m"], [], {})
        tally = runner.generate(store, data, "capable:m", requests, options, run_id)
    assert SENT == [] and tally.generated == 0


def test_plugins_lists_capabilities_and_aliases() -> None:
    from conftest import cli

    out = cli("plugins", check=True).stdout
    assert "capabilities: structured_output, logprobs, batch_api" in out  # openai
    assert "model aliases:" in out and "deccp-toy" in out.split("model aliases:")[1]
