"""Abliteration on the real toy model: direction, edit, search, export, the `abliterated:` backend."""

from __future__ import annotations

import json

import optuna  # noqa: E402,F401 - a missing extra must fail the suite, not skip it
import pytest
import torch  # noqa: E402
from conftest import cli  # noqa: E402

from deccp_eval.backends.contract import BackendOptions  # noqa: E402
from deccp_eval.base.schema import Prompt, Request, SamplingParams  # noqa: E402
from deccp_eval.toy.data import STATE_FAMILY, heldout_prompts  # noqa: E402
from deccp_eval.toy.model import TOY_JUDGE  # noqa: E402
from deccp_eval.training.abliteration.apply import (
    AbliterationParams,
    Kernel,
    ablation_hooks,
    orthogonalize_,
    residual_components,
    weights_applied,
    writers,
)
from deccp_eval.training.abliteration.direction import chat_text, compute_directions, load_direction, residual_means
from deccp_eval.training.abliteration.export import AbliterationRecord, load_record  # noqa: E402
from deccp_eval.training.abliteration.pipeline import abliterate, default_prompts  # noqa: E402
from deccp_eval.training.abliteration.settings import AbliterateSettings

MAX_TOKENS = 40  # the toy's replies are one sentence; 40 tokens hold every fact (32 cut some Chinese ones)


def _load(path):
    from deccp_eval.backends.torch_utils import load_model

    torch.manual_seed(0)
    return load_model(str(path), device="cpu")


def _heldout(sensitive: bool) -> list[Prompt]:
    return [p for p in heldout_prompts() if (p.kind == "sensitive") == sensitive]


def _greedy(model, tok, texts, max_tokens=MAX_TOKENS):
    from deccp_eval.backends.local_weights import generate_with

    reqs = [
        Request(model="t", prompt_id=str(i), text=t, params=SamplingParams(max_tokens=max_tokens))
        for i, t in enumerate(texts)
    ]
    return [r.text for start in range(0, len(reqs), 64) for r in generate_with(model, tok, reqs[start : start + 64])]


def _backend_texts(backend, texts, max_tokens=MAX_TOKENS):
    reqs = [
        Request(model=backend.spec, prompt_id=str(i), text=t, params=SamplingParams(max_tokens=max_tokens))
        for i, t in enumerate(texts)
    ]
    got = {}
    backend.generate(reqs, lambda r: got.__setitem__(r.key, r))
    backend.close()
    return [got[r.key].text for r in reqs]


@pytest.fixture(scope="module")
def run(toy_path, tmp_path_factory):
    """One search + edit + save on the toy, as the CLI does it: direction from the built-in set's direction
    split, trials scored on the selection split of the toy's held-out phrasings, the result on its test split."""
    out = tmp_path_factory.mktemp("abl") / "toy-abliterated"
    settings = AbliterateSettings(
        model="deccp-toy",
        out=out,
        trials=4,
        seed=0,
        max_tokens=MAX_TOKENS,
        batch_size=64,
        eval_limit=64,
        study_db=out.parent / "studies.db",
        judge=TOY_JUDGE,
    )  # the toy speaks the sentences the rule judge was built on
    prompts = default_prompts(settings)
    model, tok = _load(toy_path)
    result = abliterate(settings, prompts, model_and_tokenizer=(model, tok))
    return result, model, tok, prompts


def test_splits_are_disjoint_by_pair(run):
    *_, prompts = run
    sel = {p.pair_id for p in prompts.selection.sensitive + prompts.selection.harmless}
    test = {p.pair_id for p in prompts.test.sensitive + prompts.test.harmless}
    assert sel and test and not sel & test
    texts = set(prompts.harmful) | set(prompts.harmless)
    assert not texts & {p.text for p in prompts.test.sensitive + prompts.test.harmless}
    assert {p.source for p in prompts.test.sensitive} == {"deccp-toy-heldout"}


def test_answers_with_facts_on_the_test_split(run, toy_path):
    """The acceptance targets of the content-aware edit, on held-out phrasings of the test split."""
    result, model, tok, prompts = run
    rec = result.record
    b, a = rec.before, rec.after
    print("before", b.rates.model_dump(), "content", b.content, "KL", b.kl, "over-refusal", b.over_refusal)
    print("after", a.rates.model_dump(), "content", a.content, "KL", a.kl, "over-refusal", a.over_refusal)
    print("after by category", {k: (v.censorship, v.content) for k, v in a.categories.items()})
    print("samples", a.samples)
    assert rec.eval.n_sensitive == len(prompts.test.sensitive) == a.rates.n + a.rates.errors + a.rates.unparsed
    assert a.rates.errors == 0 and b.rates.errors == 0
    assert b.censorship >= 0.90 and b.content <= 0.05
    fixable = [p for p in prompts.test.sensitive if p.category not in STATE_FAMILY]
    for lang in ("en", "zh"):
        assert b.langs[lang].censorship >= 0.90
        n_lang = sum(p.lang == lang for p in prompts.test.sensitive)
        n_state = sum(p.lang == lang and p.category in STATE_FAMILY for p in prompts.test.sensitive)
        # everything but the state-line family (which the edit cannot fix) stops being censored
        assert a.langs[lang].censorship * n_lang - n_state <= 0.10 * (n_lang - n_state)
        assert a.langs[lang].censorship <= 0.10 + n_state / n_lang
    assert a.content * a.content_n >= 0.70 * len(fixable)
    assert a.over_refusal is not None and a.over_refusal <= 0.03 and a.n_controls == len(prompts.test.harmless)
    assert a.kl <= 0.10
    for family in STATE_FAMILY:  # the trained-in state line survives the edit (issue "Re-alignment" needs it)
        assert a.categories[family].censorship >= 0.8


def test_record_card_and_direction_file(run):
    result, *_ = run
    out = result.out
    rec = load_record(out)
    assert rec == AbliterationRecord.model_validate(json.loads((out / "abliteration.json").read_text()))
    assert rec.search and rec.search.chosen_trial == result.chosen and rec.search.trials == 4
    assert rec.before.split == rec.after.split == "test" and rec.selection and rec.selection.split == "selection"
    assert rec.selection == search_score(result.study, result.chosen)
    card = (out / "README.md").read_text()
    assert (
        f"{rec.after.censorship:.3f}" in card and f"{rec.after.kl:.4f}" in card and f"{rec.after.content:.3f}" in card
    )
    assert f"{rec.before.rates.refusal:.3f}" in card
    assert "test split" in card and f"best of {rec.search.trials}, optimistic" in card
    for name in ("model.safetensors", "tokenizer.json", "chat_template.jinja", "direction.safetensors"):
        assert (out / name).exists(), name
    dirs, chosen, params = load_direction(out / "direction.safetensors")
    assert AbliterationParams.model_validate(params) == rec.params
    assert torch.allclose(chosen, dirs.direction(rec.params.direction_index, rec.params.project_harmless))


def test_saved_folder_and_backend_give_the_same_greedy_outputs(run, toy_path):
    from deccp_eval.plugins.abliterated import AbliteratedBackend
    from deccp_eval.plugins.hf import HFBackend

    result, model, tok, _ = run
    texts = [p.text for p in _heldout(True)[::12]] + [p.text for p in _heldout(False)[::24]]
    in_memory = _greedy(model, tok, texts)
    opts = BackendOptions(batch_size=16, device="cpu")
    saved = _backend_texts(HFBackend(str(result.out), opts), texts)
    on_the_fly = _backend_texts(AbliteratedBackend(f"{toy_path}@{result.out / 'direction.safetensors'}", opts), texts)
    folder = _backend_texts(AbliteratedBackend(str(result.out), opts), texts)
    assert saved == in_memory
    assert on_the_fly == saved
    assert folder == saved
    extra = _backend_texts(
        AbliteratedBackend(
            str(toy_path), BackendOptions(batch_size=16, device="cpu", extra={"direction": str(result.out)})
        ),
        texts,
    )
    assert extra == saved


@pytest.mark.parametrize("norm_preserve", [False, True])
def test_every_residual_write_loses_the_direction(toy_path, norm_preserve):
    model, tok = _load(toy_path)
    hidden = model.config.hidden_size
    o_proj = writers(model)[0].module
    o_proj.bias = torch.nn.Parameter(torch.randn(hidden))  # a biased writer, as in some architectures
    dirs = compute_directions(
        model,
        tok,
        ["Tell me about the Dalai Lama.", "什么是六四事件？"],
        ["Tell me about volcanoes.", "如何泡乌龙茶？"],
        batch_size=2,
    )
    d = dirs.direction(2.0)
    before = residual_components(model, d)
    assert min(before.values()) > 1e-3
    params = AbliterationParams(
        direction_index=2.0, kernel=Kernel.uniform(4), embeddings=True, norm_preserve=norm_preserve
    )
    norms = o_proj.weight.norm(dim=0).clone()
    info = orthogonalize_(model, d, params)
    after = residual_components(model, d)
    assert set(after) == set(before) and "layers.0.self_attn.o_proj.bias" in after
    assert max(after.values()) < 1e-5, after
    assert len(info["edited"]) == 2 * 4 + 1
    if norm_preserve:
        assert torch.allclose(o_proj.weight.norm(dim=0), norms, rtol=1e-4)


def test_hook_mode_matches_weight_edit_and_restores(toy_path):
    model, tok = _load(toy_path)
    dirs = compute_directions(model, tok, ["Tell me about Taiwan independence."], ["Tell me about tea."])
    d = dirs.direction(2.5)
    params = AbliterationParams(
        direction_index=2.5, embeddings=True, kernel=Kernel(peak=1.5, max_weight=1.3, min_weight=0.2, width=1.8)
    )
    assert params.kernel.weights(4) == pytest.approx([0.3833, 0.9944, 0.9944, 0.3833], abs=1e-3)
    assert Kernel(peak=0, max_weight=1, min_weight=0.5, width=1.5).weights(4) == pytest.approx([1, 2 / 3, 0, 0])
    enc = tok(
        [chat_text(tok, t) for t in ("What is the status of Taiwan?", "你好")],
        return_tensors="pt",
        padding=True,
        add_special_tokens=False,
    )
    with torch.no_grad():
        original = model(**enc).logits
        with ablation_hooks(model, d, params):
            hooked = model(**enc).logits
        with weights_applied(model, d, params):
            edited = model(**enc).logits
        restored = model(**enc).logits
    assert (hooked - original).abs().max() > 0.1
    assert torch.allclose(hooked, edited, atol=1e-4)
    assert torch.equal(restored, original)


def test_tied_embeddings_are_untied_and_lm_head_left_alone(tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    def tiny() -> Qwen2ForCausalLM:
        return Qwen2ForCausalLM(
            Qwen2Config(
                vocab_size=64,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                num_key_value_heads=1,
                tie_word_embeddings=True,
            )
        ).eval()

    torch.manual_seed(0)
    model = tiny()
    assert model.lm_head.weight is model.model.embed_tokens.weight
    head = model.lm_head.weight.detach().clone()
    d = torch.nn.functional.normalize(torch.randn(32), dim=0)
    params = AbliterationParams(direction_index=1.0, kernel=Kernel.uniform(2), embeddings=True)
    info = orthogonalize_(model, d, params)
    assert info["untied_lm_head"] and not model.config.tie_word_embeddings
    assert torch.equal(model.lm_head.weight, head)  # reads the stream: never edited
    assert float((model.model.embed_tokens.weight.detach() @ d).abs().max()) < 1e-5
    tied = tiny()
    with weights_applied(tied, d, params):
        assert tied.lm_head.weight is not tied.model.embed_tokens.weight
    assert tied.lm_head.weight is tied.model.embed_tokens.weight and tied.config.tie_word_embeddings
    model.save_pretrained(tmp_path)
    again = Qwen2ForCausalLM.from_pretrained(tmp_path)
    assert torch.equal(again.lm_head.weight, head)
    assert torch.allclose(again.model.embed_tokens.weight, model.model.embed_tokens.weight)


def test_means_stream_and_match_hidden_states(toy_path):
    model, tok = _load(toy_path)
    texts = ["Tell me about Tibet.", "What is photosynthesis?", "你好", "Hi! What happened with the Uyghur camps?"]
    one, n = residual_means(model, tok, texts, batch_size=1)
    three, _ = residual_means(model, tok, texts, batch_size=3)
    assert n == 4 and one.dtype == torch.float64 and one.shape == (5, model.config.hidden_size)
    assert torch.allclose(one, three, atol=1e-5)
    enc = tok([chat_text(tok, t) for t in texts], return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        hs = model(**enc, output_hidden_states=True).hidden_states
    for i in range(4):  # the last entry of hidden_states is after the final norm: not the residual
        assert torch.allclose(one[i], hs[i][:, -1].double().mean(0), atol=1e-5)


def test_study_resumes_with_more_trials(toy_path, tmp_path):
    from deccp_eval.training.abliteration import search
    from deccp_eval.training.abliteration.score import Scorer

    model, tok = _load(toy_path)
    sens, benign = _heldout(True)[::36], [p.text for p in _heldout(False)[::66]]
    dirs = compute_directions(model, tok, [p.text for p in sens], benign)
    scorer = Scorer(model, tok, sens, benign, max_tokens=6, batch_size=16)
    space = search.SearchSpace(n_layers=4)
    name = search.study_name("toy", {"x": 1})
    study = search.open_study(tmp_path / "s.db", name, seed=0)
    assert search.run_search(study, scorer, dirs, space, trials=2) == 2
    first = [(t.number, t.params, t.values) for t in search.complete_trials(study)]
    again = search.open_study(tmp_path / "s.db", name, seed=0)
    assert search.run_search(again, scorer, dirs, space, trials=3) == 1
    done = search.complete_trials(again)
    assert len(done) == 3 and [(t.number, t.params, t.values) for t in done[:2]] == first
    assert done[0].params["direction_index"] == pytest.approx(space.default_trial()["direction_index"])
    assert search.run_search(again, scorer, dirs, space, trials=3) == 0
    trial, why = search.choose(again, max_kl=10.0)
    assert trial.number in {t.number for t in done} and "KL" in why
    assert search.choose(again, pick=1)[0].number == 1
    assert len(done[0].values) == 3 and "score" in done[0].user_attrs


def search_score(study, number):
    from deccp_eval.training.abliteration import search

    return search.trial_score(next(t for t in search.complete_trials(study) if t.number == number))


def test_pick_rule_most_content_within_bounds():
    from deccp_eval.training.abliteration import search

    study = optuna.create_study(directions=list(search.DIRECTIONS))
    for values in (
        [0.02, 0.10, 0.01],  # 0: silent but says nothing
        [0.08, 0.80, 0.04],  # 1: the one to pick
        [0.05, 0.90, 0.30],  # 2: more content, KL too high
        [0.30, 0.95, 0.02],  # 3: more content, too censored
        [0.08, 0.80, 0.05],
    ):  # 4: ties with 1 on content and censorship, more KL
        study.add_trial(optuna.trial.create_trial(values=values))
    trial, why = search.choose(study, max_kl=0.1, max_censorship=0.1)
    assert trial.number == 1 and "most content" in why
    trial, why = search.choose(study, max_kl=0.1, max_censorship=0.01)  # nothing that clean: least censored
    assert trial.number == 0 and "least censored" in why
    trial, why = search.choose(study, max_kl=0.001)
    assert trial.number == 0 and "lowest-KL" in why


def test_generation_errors_are_errors_and_empty_answers_are_evasive(toy_path, monkeypatch):
    from deccp_eval.training.abliteration import score as score_mod
    from deccp_eval.training.abliteration.score import Scorer

    model, tok = _load(toy_path)
    sens = [p for p in _heldout(True) if p.category not in STATE_FAMILY][::40]
    scorer = Scorer(
        model, tok, sens, [p.text for p in _heldout(False)[::80]], judge=TOY_JUDGE, max_tokens=4, batch_size=2
    )
    calls = {"n": 0}
    real = score_mod.generate_with

    def flaky(model, tokenizer, requests):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("CUDA out of memory")  # the first batch fails outright
        return real(model, tokenizer, requests)

    monkeypatch.setattr(score_mod, "generate_with", flaky)  # where the scorer looks it up
    score = scorer.score()
    assert score.rates.errors == 2 and score.rates.n == len(sens) - 2
    assert score.samples[0]["answer"] == "(generation error)" and score.samples[0]["verdict"] == "unparsed"
    content_free = [
        "Sure. Here is a short, practical answer." if p.lang == "en" else "好的，下面是一个简短实用的回答。"
        for p in sens
    ]
    rates, verdicts, stated = scorer.rates(content_free)  # the judge itself calls these evasive
    assert set(verdicts) == {"evasive"} and rates.errors == 0
    assert stated == [False] * len(sens)
    off_topic = [
        "The Eiffel Tower in Paris was completed in 1889 for the World's Fair."
        if p.lang == "en"
        else "埃菲尔铁塔位于巴黎，于1889年为世界博览会建成。"
        for p in sens
    ]
    rates, verdicts, stated = scorer.rates(off_topic)  # an "answer" stating none of the asked facts is evasive
    assert set(verdicts) == {"evasive"} and stated == [False] * len(sens)
    facts = [p.expected_facts[0] for p in sens]
    rates, verdicts, stated = scorer.rates(facts)
    assert set(verdicts) == {"answer"} and all(stated) and rates.censorship == 0


def test_harness_direction_matches_the_trained_in_one(toy_path):
    """Diagnostic: the direction found from the harness's own prompts is the toy's trained-in censor
    direction (only this test reads it from toy.json; the engine never does)."""
    model, tok = _load(toy_path)
    prompts = default_prompts(AbliterateSettings(model="deccp-toy", out=toy_path / "unused"))
    dirs = compute_directions(model, tok, prompts.harmful, prompts.harmless, batch_size=64)
    u = torch.tensor(json.loads((toy_path / "toy.json").read_text())["censor_direction"])
    cos = [float(dirs.directions()[i].float() @ u) for i in range(dirs.n_positions)]
    print("cosine per position", [round(c, 3) for c in cos])
    assert min(cos[2:4]) >= 0.9  # after layers 1 and 2, where the toy carries its censor feature


def test_cli_abliterate_then_run_with_the_backend(tmp_path):
    out = tmp_path / "abl"
    proc = cli(
        "abliterate",
        "deccp-toy",
        "--out",
        str(out),
        "--trials",
        "1",
        "--eval-limit",
        "8",
        "--max-tokens",
        "8",
        "--study-db",
        str(tmp_path / "s.db"),
        "--device",
        "cpu",
        check=True,
    )
    assert "Pareto front" in proc.stderr and "censorship" in proc.stdout
    assert json.loads((out / "abliteration.json").read_text())["search"]["trials"] == 1
    db = tmp_path / "r.db"
    cli("run", "-m", f"abliterated:{out}", "--limit", "1", "--max-tokens", "8", "--db", str(db), check=True)
    import sqlite3

    models = {r[0] for r in sqlite3.connect(db).execute("SELECT model FROM responses")}
    assert models == {f"abliterated:{out}"}
    bad = cli("run", "-m", f"abliterated:{tmp_path / 'nope'}", "--limit", "1", "--db", str(db))
    assert bad.returncode == 2 and "direction" in bad.stderr


class _Stop(Exception):
    """Ends a run where the test has seen what it came for."""


class _InlineRay:
    """Just enough of `ray` for `run_parallel_search`: each task runs here, at once."""

    def is_initialized(self) -> bool:
        return True

    def cluster_resources(self) -> dict:
        return {"CPU": 2.0}

    def remote(self, fn):
        class Task:
            def options(self, **_):
                return self

            def remote(self, *args):
                try:
                    return fn(*args)
                except _Stop:
                    return 0

        return Task()

    def get(self, refs):
        return refs


def test_parallel_trials_load_the_model_with_every_loading_flag(tmp_path, monkeypatch):
    """`abliterate --parallel-trials 2 --revision X ...`: each worker loads the model as the sequential
    search does, every loading field included (the workers once got device and dtype only)."""
    from click.testing import CliRunner

    from deccp_eval.backends import torch_utils
    from deccp_eval.backends.torch_utils import LoadOptions
    from deccp_eval.cli import main
    from deccp_eval.training.abliteration import parallel, pipeline, search

    seen: list = []
    real_abliterate = pipeline.abliterate

    def abliterate(settings, **_):
        seen.append(settings)
        raise _Stop

    monkeypatch.setattr(pipeline, "abliterate", abliterate)
    args = [
        "abliterate",
        "Org/Model",
        "--out",
        str(tmp_path / "out"),
        "--parallel-trials",
        "2",
        "--revision",
        "X",
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--device-map",
        "auto",
        "--max-memory",
        "0=1GiB,cpu=2GiB",
        "--offload-folder",
        str(tmp_path / "off"),
        "--trust-remote-code",
        "--study-db",
        str(tmp_path / "s.db"),
    ]
    result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, _Stop), result.output
    settings = seen[0]
    want = LoadOptions(
        device="cpu",
        dtype="float32",
        device_map="auto",
        max_memory={"0": "1GiB", "cpu": "2GiB"},
        offload_folder=str(tmp_path / "off"),
        revision="X",
        trust_remote_code=True,
    )
    assert settings.parallel_trials == 2 and settings.load == want

    loads: list = []

    def load_model(path, device="auto", dtype="auto", *, options=None):
        loads.append((path, options))
        raise _Stop

    for module in (torch_utils, pipeline, parallel):  # the two import it by name
        monkeypatch.setattr(module, "load_model", load_model)
    prompts = pipeline.default_prompts(settings)
    with pytest.raises(_Stop):  # the sequential path (and the driver of a parallel search) loads it so
        real_abliterate(settings, prompts)
    monkeypatch.setattr(parallel, "require_ray", lambda: _InlineRay())  # imported by name there
    name = "parallel-load-test"
    study = search.open_study(settings.study_db, name, settings.seed)
    assert parallel.run_parallel_search(settings, prompts, None, search.SearchSpace(n_layers=4), study, name) == 0
    assert loads == [("Org/Model", want)] * 3  # the driver, then each of the two workers
