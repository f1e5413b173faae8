"""Every model family (dense and MoE, Chinese families first) on tiny random-initialised models.

For each family the installed transformers knows: hf: generation with a chat template, the
direction pass reads every layer, abliteration edits every residual writer (per expert for fused
MoE tensors) so that d^T W ~ 0, hooks equal the weight edit, tied embeddings stay correct, and the
saved folder reloads (hf:, and abliterated:BASE@DIRECTION) with the in-memory edit's greedy tokens.
`python tests/tiny_models.py` prints the same checks as a table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import tiny_models  # noqa: E402

RESULTS: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def tok():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: extra threads only contend on a shared 2-core machine
    yield tiny_models.tokenizer()
    torch.set_num_threads(threads)


def test_installed_transformers_has_every_required_family():
    import transformers

    missing = [f for f in tiny_models.REQUIRED if not tiny_models.known(f)]
    assert not missing, f"transformers {transformers.__version__} lacks {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("family", list(tiny_models.FAMILIES))
def test_family(family, tok, tmp_path):
    import transformers

    if not tiny_models.known(family):
        RESULTS[family] = {c: f"missing in transformers {transformers.__version__}" for c in tiny_models.CELLS}
        assert family not in tiny_models.REQUIRED
        pytest.skip(f"transformers {transformers.__version__} has no {family} (an optional family)")
    cells = tiny_models.check_family(family, tmp_path, tok)
    RESULTS[family] = cells
    failed = {c: v for c, v in cells.items() if c != "vllm" and not v.startswith("pass")}
    assert not failed, failed
    if family in tiny_models.STREAM_NOTES:
        assert "note:" in cells["edit"]


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.parametrize("family", tiny_models.VLLM_FAMILIES)
def test_vllm_reload(family, tok, tmp_path):
    """vllm: loads the abliterated folder (fused experts edited per expert) and gives hf:'s greedy texts."""
    result = tiny_models.vllm_matches_hf(tiny_models.edited_folder(family, tmp_path, tok))
    RESULTS.setdefault(family, {})["vllm"] = result
    assert result == "pass", result


def test_matrix_table(capsys):
    """The table for the closing note (run with -s to see it); every family above has a row."""
    if not RESULTS:
        pytest.skip("run together with test_family")
    table = tiny_models.matrix_markdown(RESULTS)
    with capsys.disabled():
        print("\n" + table)
    assert table.count("\n| ") == len(RESULTS)


def test_no_writer_is_a_clear_error():
    """A layer with nothing recognisable as a residual writer names its module tree."""
    import torch

    from deccp_eval.base.errors import UsageError
    from deccp_eval.training.abliteration.writers import find_writers

    class Layer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mixer = torch.nn.Linear(8, 8)
            self.proj_weird = torch.nn.Linear(8, 8)

    class Inner(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList([Layer()])

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = Inner()
            self.config = type("C", (), {"hidden_size": 8})()

        @property
        def base_model(self):
            return self.model

    with pytest.raises(UsageError) as exc:
        find_writers(Model())
    assert "decoder layer 0" in str(exc.value) and "proj_weird: Linear" in str(exc.value)


def test_fused_edit_never_copies_all_experts(tok, tmp_path):
    """The fused expert edit works one expert at a time: peak extra memory is one expert's matrix, not all."""
    import torch

    from deccp_eval.backends.torch_utils import load_model
    from deccp_eval.training.abliteration.apply import edit_writer_, writers

    folder = tiny_models.build("qwen3_moe", tmp_path / "m", tok)
    model, _ = load_model(str(folder), device="cpu")
    fused = next(w for w in writers(model) if w.fused)
    seen: list[tuple[int, ...]] = []
    real = torch.Tensor.to

    def spy(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        if self.dim() >= 2 and out.dtype == torch.float32:
            seen.append(tuple(self.shape))
        return out

    d = torch.randn(model.config.hidden_size)
    torch.Tensor.to = spy
    try:
        edit_writer_(fused, d, 1.0)
    finally:
        torch.Tensor.to = real
    assert seen and all(len(s) == 2 for s in seen), seen  # never the [experts, hidden, inner] tensor
    d = d / d.norm()
    assert float((d @ fused.param.detach()).abs().max()) < 1e-5


def test_a_residual_writer_the_name_rules_miss_is_found_by_its_effect_or_reported(tok, tmp_path, monkeypatch, caplog):
    """Writers are found by name; a layer whose write still carries a test direction once every found writer is
    projected gets the writers the names missed found by what they do (the hidden-sized linear maps whose
    projection covers it; input projections are not kept), and what even that cannot cover is named in a
    warning, so an unknown layout gives a partial edit that says so, never a silent one."""
    import logging

    import torch

    from deccp_eval.backends.torch_utils import load_model
    from deccp_eval.training.abliteration import writers
    from deccp_eval.training.abliteration.direction import decoder_layers

    model, _ = load_model(str(tiny_models.build("llama", tmp_path / "m", tok)), device="cpu")
    layers = decoder_layers(model)
    found = writers.find_writers(model)
    assert writers.uncovered_layers(model, layers, found) == []
    without = [w for w in found if not (w.layer == 1 and w.role == "mlp")]
    assert [i for i, _ in writers.uncovered_layers(model, layers, without)] == [1]

    monkeypatch.setattr(writers, "OUT_NAMES", writers.OUT_NAMES - {"down_proj"})  # as GPT-J's fc_out once was
    assert len(writers.layer_writers(layers[0], 0, model.config.hidden_size)) == 1  # the names find o_proj only
    with caplog.at_level(logging.INFO, logger="deccp_eval"):
        again = writers.find_writers(model)
    assert sorted(w.name for w in again) == sorted(w.name for w in found)  # down_proj of both layers, nothing else
    assert "found by their effect, not their name: mlp.down_proj" in caplog.text and "still add" not in caplog.text

    # a write no linear map explains (a constant added to the MLP's output) is reported, not hidden
    bias = torch.ones(model.config.hidden_size)
    layers[1].mlp.register_forward_hook(lambda _m, _i, out: out + bias)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="deccp_eval"):
        writers.find_writers(model)
    assert "decoder layer(s) 1 still add to the stream" in caplog.text and "not recognised" in caplog.text


def test_hyper_connection_streams_are_read_as_their_mean():
    """DeepSeek V4 passes [batch, seq, streams, hidden] between layers, other layouts flatten the streams:
    either way a direction and the probe read their mean; a width that is no multiple of hidden is an error."""
    import torch

    from deccp_eval.base.errors import UsageError
    from deccp_eval.training.abliteration.direction import stream_mean

    plain = torch.randn(2, 3, 8)
    assert stream_mean(plain, 8, lead=2) is plain
    streams = torch.randn(2, 3, 4, 8)
    assert torch.equal(stream_mean(streams, 8, lead=2), streams.mean(dim=2))
    assert torch.allclose(stream_mean(streams.flatten(-2), 8, lead=2), streams.mean(dim=2))
    assert torch.equal(stream_mean(streams[:, -1], 8, lead=1), streams[:, -1].mean(dim=1))
    with pytest.raises(UsageError, match="not a multiple of the hidden size 8"):
        stream_mean(torch.randn(2, 3, 12), 8, lead=2)


def test_a_residual_layout_it_does_not_know_is_an_error_not_a_wrong_direction(tok, tmp_path, monkeypatch):
    """Gemma 3n passes its AltUp streams first ([streams, batch, sequence, hidden]), mixed by learned
    coefficients: reading them as [batch, sequence, ...] would average the wrong axes into a direction
    without a word, so the direction pass names the layout instead."""
    from deccp_eval.backends.torch_utils import load_model
    from deccp_eval.base.errors import UsageError
    from deccp_eval.training.abliteration.direction import compute_directions

    if not tiny_models.known("gemma3n_text"):
        pytest.fail("transformers lacks gemma3n_text; pick another streams-first family for this test")
    gemma3n = {"layer_types": ["sliding_attention", "full_attention"], "num_kv_shared_layers": 0}
    monkeypatch.setitem(tiny_models.FAMILIES, "gemma3n_text", {**gemma3n, "tie_word_embeddings": True})
    folder = tiny_models.build("gemma3n_text", tmp_path / "m", tok)
    model, tokenizer = load_model(str(folder), device="cpu")
    with pytest.raises(UsageError, match=r"decoder layer 0 output \(4, 2, \d+, 64\) .* residual layout"):
        compute_directions(model, tokenizer, tiny_models.PROMPTS, tiny_models.HARMLESS)
