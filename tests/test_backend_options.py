"""Typed backend options (a typo is a clear exit-2 error naming the valid ones) and each backend's
fingerprint: what changes an answer changes the request key, nothing else does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import cli
from fakes.anthropic_server import FakeAnthropicServer
from fakes.openai_server import FakeOpenAIServer

from deccp_eval.backends.contract import BackendOptions, make_backend
from deccp_eval.base.errors import UsageError
from deccp_eval.base.schema import Prompt, Response, SamplingParams
from deccp_eval.datasets.loading import Dataset
from deccp_eval.run import runner
from deccp_eval.store.db import Store

KEY = "sk-test-SECRET-123456"
PARAMS = SamplingParams(max_tokens=8)


def _data(n: int = 3) -> Dataset:
    return Dataset(
        name="fp",
        version="1",
        prompts=[
            Prompt(
                id=f"q{i}",
                pair_id=f"q{i}",
                lang="en",
                category="test",
                kind="sensitive",
                text=f"What happened in case {i}?",
            )
            for i in range(n)
        ],
    )


def _send(store: Store, data: Dataset, spec: str, options: BackendOptions) -> runner.ModelTally:
    """One model's part of a run: requests keyed with the backend's fingerprint, what is stored is skipped."""
    fingerprint = make_backend(spec, options).fingerprint()
    requests = [r.model_copy(update={"fingerprint": fingerprint}) for r in runner.plan(data, spec, PARAMS)]
    run_id = runner.new_run_id()
    store.put_prompts(data.name, data.prompts)
    store.start_run(run_id, data.name, data.version, [spec], [], {})
    return runner.generate(store, data, spec, requests, options, run_id)


def _stored(store: Store) -> int:
    return store.conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


# -- options: clear errors ------------------------------------------------------------------------------


def test_misspelt_backend_option_is_exit_2_naming_the_valid_options(tmp_path: Path) -> None:
    proc = cli(
        "run",
        "-m",
        "vllm:deccp-toy",
        "--backend-option",
        "tensor_paralel_size=2",
        "--limit",
        "1",
        "--db",
        str(tmp_path / "d.db"),
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "unknown option 'tensor_paralel_size' (did you mean 'tensor_parallel_size'?)" in proc.stderr
    assert "Valid options for the vllm backend: chat_template, enforce_eager" in proc.stderr

    wrong_type = cli(
        "run", "-m", "vllm:deccp-toy", "--backend-option", "tensor_parallel_size=two", "--db", str(tmp_path / "d.db")
    )
    assert wrong_type.returncode == 2 and "Traceback" not in wrong_type.stderr
    assert "option 'tensor_parallel_size': Input should be a valid integer" in wrong_type.stderr


def test_models_file_options_are_checked_against_their_own_backend(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n  abl:\n    backend: abliterated\n    model: deccp-toy\n    options: {max_weigth: 0.5}\n",
        encoding="utf-8",
    )
    proc = cli("run", "-m", "abl", "--models-file", str(models), "--db", str(tmp_path / "d.db"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(models) in proc.stderr and "unknown option 'max_weigth' (did you mean 'max_weight'?)" in proc.stderr
    assert "direction, direction_index, embeddings, max_weight, mode, norm_preserve" in proc.stderr

    # In a models file an entry names its own backend, so another backend's option is an error too.
    models.write_text(
        "models:\n  local:\n    backend: hf\n    model: deccp-toy\n    options: {max_model_len: 512}\n",
        encoding="utf-8",
    )
    proc = cli("run", "-m", "local", "--models-file", str(models), "--db", str(tmp_path / "d.db"))
    assert proc.returncode == 2 and "unknown option 'max_model_len'" in proc.stderr
    assert "Valid options for the hf backend: none" in proc.stderr


def test_one_flag_reaches_every_model_and_each_backend_keeps_its_own(caplog: pytest.LogCaptureFixture) -> None:
    options = BackendOptions(extra={"max_model_len": 512, "omit_params": ["seed"], "judge_samples": 3})
    vllm = make_backend("vllm:deccp-toy", options)
    assert vllm.opts.max_model_len == 512 and vllm.engine_args()["max_model_len"] == 512
    openai = make_backend("openai:m", options)
    assert openai.opts.omit_params == ["seed"] and "seed" not in openai.body(
        runner.plan(_data(1), "openai:m", SamplingParams(seed=1))[0]
    )
    hf = make_backend("hf:deccp-toy", options)
    assert hf.opts.model_dump() == {}
    assert "hf:deccp-toy ignores option max_model_len (an option of another backend)" in caplog.text
    with pytest.raises(UsageError, match="unknown option 'temprature'"):
        make_backend("openai:m", BackendOptions(extra={"temprature": 0.5}))
    with pytest.raises(UsageError, match="option 'first_request_grace_s': Input should be greater than or equal to 0"):
        make_backend("anthropic:m", BackendOptions(extra={"first_request_grace_s": -1}))


# -- one options system: loading composed, judge settings typed, knob() the only way out of a key ----


def test_loading_fields_are_one_load_options_composed_everywhere() -> None:
    from deccp_eval.backends.torch_utils import LoadOptions
    from deccp_eval.training.abliteration.pipeline import AbliterateSettings

    for model in (BackendOptions, AbliterateSettings):  # composed, never copied
        assert set(LoadOptions.model_fields).isdisjoint(model.model_fields), model
        assert model.model_fields["load"].annotation is LoadOptions
    flat = BackendOptions(device="cpu", revision="v2", trust_remote_code=True, extra={"max_model_len": 512})
    assert flat.load == LoadOptions(device="cpu", revision="v2", trust_remote_code=True)
    assert BackendOptions(load={"device": "cpu", "revision": "v2", "trust_remote_code": True}) == flat.model_copy(
        update={"extra": {}}
    )
    assert flat.model_copy(update={"dtype": "bfloat16"}).load == flat.load.model_copy(update={"dtype": "bfloat16"})
    assert BackendOptions.model_validate(flat.model_dump(mode="json")) == flat  # what Ray actors get
    settings = AbliterateSettings(model="m", out=Path("o"), revision="v2", device_map="auto")
    assert settings.load == LoadOptions(revision="v2", device_map="auto")
    with pytest.raises(ValueError, match="unknown|extra"):
        BackendOptions(load={"revison": "v2"})


def test_judge_settings_are_typed_and_in_no_backend_fingerprint(tmp_path: Path) -> None:
    """`--judge-samples` (or any judge setting) once changed a third-party backend's answer keys."""
    from deccp_eval.backends.contract import Backend, JudgeOptions

    class ThirdParty(Backend):  # no Options of its own: every other key is output-changing
        name = "third-party"

        def generate(self, requests, on_response):  # pragma: no cover - never called
            raise AssertionError

    options = BackendOptions(extra={"judge_samples": 3, "judge_max_tokens": 300, "escalate_below": 0.5, "k": 1})
    assert options.judge == JudgeOptions(samples=3, max_tokens=300, escalate_below=0.5)
    assert options.extra == {"k": 1}
    base = ThirdParty("m", BackendOptions(extra={"k": 1})).fingerprint()
    assert ThirdParty("m", options).fingerprint() == base
    assert ThirdParty("m", BackendOptions(judge={"samples": 5}, extra={"k": 1})).fingerprint() == base
    assert ThirdParty("m", BackendOptions(extra={"k": 2})).fingerprint() != base
    (tmp_path / "config.json").write_text("{}")
    judged = BackendOptions(extra={"judge_samples": 3, "judge_max_tokens": 300, "judge_logprobs": 0})
    for spec in ("openai:m", "anthropic:m", f"vllm:{tmp_path}", f"hf:{tmp_path}"):
        assert make_backend(spec, judged).fingerprint() == make_backend(spec, BackendOptions()).fingerprint()
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        BackendOptions(extra={"judge_samples": 0})


def test_cli_judge_flags_fill_judge_options_and_a_bad_one_is_exit_2(tmp_path: Path) -> None:
    proc = cli("run", "-m", "openai:m", "--backend-option", "judge_samples=zero", "--db", str(tmp_path / "d.db"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "judge" in proc.stderr and "samples" in proc.stderr and "valid integer" in proc.stderr


def test_knob_keeps_a_third_party_option_out_of_the_fingerprint() -> None:
    """A third-party backend declares its own options; `knob()` is how one stays out of the key."""
    from deccp_eval.backends.contract import Backend, knob
    from deccp_eval.backends.contract import Options as BaseOptions

    class Remote(Backend):
        name = "remote-thing"

        class Options(BaseOptions):
            temperature_scale: float = 1.0  # changes answers
            poll_s: float = knob(1.0, "seconds between polls")  # changes nothing that comes back

        def generate(self, requests, on_response):  # pragma: no cover - never called
            raise AssertionError

    def fp(**extra: object) -> str:
        return Remote("m", BackendOptions(extra=extra)).fingerprint()

    base = fp()
    assert fp(poll_s=9.0) == base and fp(temperature_scale=1.0) == base  # a knob; a default
    assert fp(temperature_scale=2.0) != base


def test_stored_keys_of_unchanged_backends_do_not_move(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fingerprints pinned before the options were recomposed: answers stored under them stay found."""
    from deccp_eval.backends.contract import Backend

    class Plain(Backend):
        name = "plain"

        def generate(self, requests, on_response):  # pragma: no cover - never called
            raise AssertionError

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    assert (
        make_backend("openai:gpt-x", BackendOptions(base_url="http://a/v1")).fingerprint()
        == "6f828fefe076043ea1ed874f9a6d95e1"
    )
    assert (
        make_backend("anthropic:claude", BackendOptions(extra={"first_request_grace_s": 0})).fingerprint()
        == "08621cd508a501c7b4edd761b0fcd2f4"
    )
    assert Plain("m", BackendOptions()).fingerprint() == "ca997f73397c8b015a27a73edea8e39e"
    assert Plain("m", BackendOptions(extra={"backoff_base_s": 1})).fingerprint() == "ca997f73397c8b015a27a73edea8e39e"
    assert Plain("m", BackendOptions(dtype="bfloat16")).fingerprint() == "6eaa88a84983a13d4c9a16052f00a89e"
    assert (
        Plain("m", BackendOptions(extra={"temperature_scale": 2})).fingerprint() == "be12563d0e5d42bbb8292b138bb65524"
    )


# -- local folders: content, not path -----------------------------------------------------------------


def _perturb(folder: Path) -> None:
    """Rewrite the weights with one tensor changed, as re-abliterating into the same folder does."""
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    tensors = load_file(path)
    name = next(n for n, t in tensors.items() if t.ndim == 2)
    tensors[name] = tensors[name] * 0.5
    save_file(tensors, path, metadata={"format": "pt"})


def test_changed_model_at_the_same_path_regenerates_and_touch_does_not(toy_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(toy_path, folder)
    spec, options, data = f"hf:{folder}", BackendOptions(batch_size=8, device="cpu"), _data(3)
    with Store(tmp_path / "d.db") as store:
        first = _send(store, data, spec, options)
        assert (first.generated, first.cached) == (3, 0)

        for f in folder.iterdir():  # same bytes, new mtimes
            f.touch()
        touched = _send(store, data, spec, options)
        assert (touched.generated, touched.cached) == (0, 3)

        _perturb(folder)
        changed = _send(store, data, spec, options)
        assert (changed.generated, changed.cached) == (3, 0)

        (folder / "chat_template.jinja").write_text(
            (folder / "chat_template.jinja").read_text(encoding="utf-8") + "\n", encoding="utf-8"
        )
        templated = _send(store, data, spec, options)
        assert (templated.generated, templated.cached) == (3, 0)

        as_bf16 = _send(store, data, spec, options.model_copy(update={"dtype": "bfloat16"}))
        assert as_bf16.generated == 3
        bigger_batches = _send(store, data, spec, options.model_copy(update={"batch_size": 2}))
        assert (bigger_batches.generated, bigger_batches.cached) == (0, 3)  # batch size is not in the key
        assert _stored(store) == 12


def test_the_toy_version_is_part_of_its_fingerprint(toy_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deccp_eval.toy import model as toy

    before = make_backend("hf:deccp-toy").fingerprint()
    assert make_backend("hf:deccp-toy").fingerprint() == before
    monkeypatch.setattr(toy, "build", lambda *a, **k: toy_path)  # same weights on disk, a new version number
    monkeypatch.setattr(toy, "TOY_VERSION", toy.TOY_VERSION + "-next")
    assert make_backend("hf:deccp-toy").fingerprint() != before


def test_vllm_fingerprint_holds_the_template_text_and_output_options_only(toy_path: Path, tmp_path: Path) -> None:
    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}{{ m.content }}{% endfor %}", encoding="utf-8")

    def fp(**extra: object) -> str:
        return make_backend(f"vllm:{toy_path}", BackendOptions(extra=extra)).fingerprint()

    base = fp(chat_template=str(template))
    assert (
        fp(
            chat_template=str(template),
            tensor_parallel_size=2,
            gpu_memory_utilization=0.5,
            enforce_eager=True,
            max_num_seqs=4,
        )
        == base
    )  # speed and memory, not answers
    copy = tmp_path / "copy.jinja"
    shutil.copy(template, copy)
    assert fp(chat_template=str(copy)) == base  # the template's text counts, not where it lies
    template.write_text("SYSTEM {% for m in messages %}{{ m.content }}{% endfor %}", encoding="utf-8")
    assert fp(chat_template=str(template)) != base
    assert (
        len(
            {
                fp(),
                fp(max_model_len=512),
                fp(quantization="fp8"),
                fp(trust_remote_code=True),
                make_backend(f"vllm:{toy_path}", BackendOptions(dtype="bfloat16")).fingerprint(),
            }
        )
        == 5
    )
    assert fp() != make_backend(f"hf:{toy_path}").fingerprint()  # another engine, other answers


def test_abliterated_overrides_and_direction_bytes_change_the_key(toy_path: Path, tmp_path: Path) -> None:
    direction = tmp_path / "direction.safetensors"
    direction.write_bytes(b"direction v1")
    spec = f"abliterated:{toy_path}@{direction}"

    def fp(**extra: object) -> str:
        return make_backend(spec, BackendOptions(extra=extra)).fingerprint()

    base = fp()
    assert fp() == base
    variants = [
        fp(max_weight=0.5),
        fp(max_weight=1.0),
        fp(direction_index=1.0),
        fp(embeddings=False),
        fp(norm_preserve=True),
        fp(mode="hooks"),
    ]
    assert len({base, *variants}) == 7
    direction.write_bytes(b"direction v2")
    assert fp() != base
    with pytest.raises(UsageError, match="option 'mode': Input should be 'weights' or 'hooks'"):
        fp(mode="hook")
    # the base model's own fingerprint is part of it
    assert make_backend(f"hf:{toy_path}").fingerprint() not in (base, fp())


# -- remote APIs: endpoint + model + output options ---------------------------------------------------


def test_two_servers_serving_a_model_of_one_name_do_not_share_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    spec, data = "openai:qwen2-7b", _data(4)
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b, Store(tmp_path / "d.db") as store:
        on_a = BackendOptions(base_url=a.base_url)
        assert _send(store, data, spec, on_a).generated == 4
        assert _send(store, data, spec, on_a.model_copy(update={"base_url": a.base_url + "/"})).cached == 4
        on_b = BackendOptions(base_url=b.base_url)
        assert _send(store, data, spec, on_b).generated == 4
        assert (a.requests, b.requests) == (4, 4)
        # what changes how requests are sent, not what comes back, keeps the cache
        knobs = on_b.model_copy(
            update={
                "timeout_s": 5,
                "max_concurrency": 2,
                "max_retries": 2,
                "extra": {"backoff_base_s": 0.01, "first_request_grace_s": 0},
            }
        )
        assert _send(store, data, spec, knobs).cached == 4 and b.requests == 4
        omitted = on_b.model_copy(update={"extra": {"omit_params": ["top_p"]}})
        assert _send(store, data, spec, omitted).generated == 4 and b.requests == 8
        assert _stored(store) == 12


def test_the_default_endpoint_follows_the_sdk_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    default = make_backend("openai:m").fingerprint()
    assert make_backend("openai:m", BackendOptions(base_url="https://api.openai.com/v1")).fingerprint() == default
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert make_backend("openai:m").fingerprint() != default
    assert make_backend("anthropic:m").fingerprint() != make_backend("openai:m").fingerprint()


def test_each_answer_keeps_the_model_the_provider_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    got: list[Response] = []
    with FakeOpenAIServer() as oa, FakeAnthropicServer() as an:
        openai = make_backend("openai:fake-latest", BackendOptions(base_url=oa.base_url))
        openai.generate(runner.plan(_data(2), openai.spec, PARAMS), got.append)
        claude = make_backend("anthropic:claude-x", BackendOptions(base_url=an.base_url))
        claude.generate(runner.plan(_data(1), claude.spec, PARAMS), got.append)
    assert [(r.provider_model, r.system_fingerprint) for r in got] == [
        ("fake-2026-01-01", "fp_fake0001"),
        ("fake-2026-01-01", "fp_fake0001"),
        ("claude-x", None),
    ]
    assert all(r.ok and r.text for r in got)


def test_run_by_cli_keys_answers_by_endpoint_and_stores_what_the_provider_ran(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    env = {"OPENAI_API_KEY": KEY}
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        for srv in (a, b, a):
            cli(
                "run",
                "-m",
                "openai:fake-latest",
                "--base-url",
                srv.base_url,
                "--limit",
                "2",
                "--lang",
                "en",
                "--db",
                str(db),
                env=env,
                check=True,
            )
        assert (a.requests, b.requests) == (2, 2)  # the second run on `a` was served from the cache
    import sqlite3

    rows = (
        sqlite3.connect(db)
        .execute("SELECT fingerprint, provider_model, system_fingerprint, text FROM responses")
        .fetchall()
    )
    assert len(rows) == 4 and len({r[0] for r in rows}) == 2
    assert {(r[1], r[2]) for r in rows} == {("fake-2026-01-01", "fp_fake0001")} and all(r[3] for r in rows)
