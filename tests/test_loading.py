"""Big-model loading (accelerate device_map with CPU + disk offload), remote code, and --push-to-hub."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import tiny_models  # noqa: E402
from conftest import cli  # noqa: E402

# Small enough that layer 0 stays in RAM and layer 1 goes to disk (the tiny qwen3_moe is ~480 KB).
OFFLOAD_MEMORY = {"cpu": "400KB"}


@pytest.fixture(scope="module")
def moe(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tok = tiny_models.tokenizer()
    yield tiny_models.build("qwen3_moe", tmp_path_factory.mktemp("moe") / "base", tok)
    torch.set_num_threads(threads)


def _offload_options(tmp_path: Path, **extra):
    from deccp_eval.backends.contract import BackendOptions

    return BackendOptions(
        device="cpu", device_map="auto", max_memory=OFFLOAD_MEMORY, offload_folder=str(tmp_path / "offload"), **extra
    )


def test_device_map_with_cpu_and_disk_offload_matches_plain_load(moe, tmp_path):
    from deccp_eval.backends.contract import BackendOptions
    from deccp_eval.plugins.hf import HFBackend
    from deccp_eval.training.abliteration.apply import offloaded_writers

    offloaded = HFBackend(str(moe), _offload_options(tmp_path))
    model, _ = offloaded.load()
    placement = set(model.hf_device_map.values())
    assert placement == {"cpu", "disk"}, model.hf_device_map
    assert offloaded_writers(model)  # some writers really live on disk
    plain = [a.text for a in tiny_models._texts(HFBackend(str(moe), BackendOptions(device="cpu")), tiny_models.PROMPTS)]
    texts = [a.text for a in tiny_models._texts(offloaded, tiny_models.PROMPTS)]
    assert texts == plain and all(texts)


def test_abliterated_on_an_offloaded_model_uses_hooks_and_matches_the_weight_edit(moe, tmp_path):
    import torch

    from deccp_eval.backends.contract import BackendOptions
    from deccp_eval.backends.torch_utils import load_model
    from deccp_eval.plugins.abliterated import AbliteratedBackend
    from deccp_eval.training.abliteration.apply import AbliterationParams, Kernel
    from deccp_eval.training.abliteration.direction import compute_directions, save_direction

    model, tok = load_model(str(moe), device="cpu")
    dirs = compute_directions(model, tok, tiny_models.PROMPTS, tiny_models.HARMLESS, batch_size=2)
    params = AbliterationParams(direction_index=1.0, kernel=Kernel.uniform(2))
    dfile = save_direction(
        tmp_path / "direction.safetensors", dirs, dirs.direction(1.0), params.model_dump(mode="json")
    )
    spec = f"{moe}@{dfile}"
    edited = [
        a.text for a in tiny_models._texts(AbliteratedBackend(spec, BackendOptions(device="cpu")), tiny_models.PROMPTS)
    ]
    base = [
        a.text
        for a in tiny_models._texts(
            AbliteratedBackend(spec, BackendOptions(device="cpu", extra={"max_weight": 0.0})), tiny_models.PROMPTS
        )
    ]
    offloaded = AbliteratedBackend(spec, _offload_options(tmp_path))
    texts = [a.text for a in tiny_models._texts(offloaded, tiny_models.PROMPTS)]
    assert texts == edited
    assert edited != base  # the edit changes the answers, so equality above means something
    assert torch.is_tensor(dirs.harmful_mean)


def test_direction_pass_on_a_model_entirely_on_disk_matches_plain_load(moe, tmp_path):
    from deccp_eval.backends.torch_utils import LoadOptions, load_model
    from deccp_eval.training.abliteration.direction import compute_directions

    plain, tok = load_model(str(moe), device="cpu")
    disk, tok2 = load_model(
        str(moe),
        options=LoadOptions(
            device="cpu", device_map="auto", max_memory={"cpu": "100KB"}, offload_folder=str(tmp_path / "off")
        ),
    )
    assert set(disk.hf_device_map.values()) == {"disk"}, disk.hf_device_map
    a = compute_directions(plain, tok, tiny_models.PROMPTS, tiny_models.HARMLESS, batch_size=2)
    b = compute_directions(disk, tok2, tiny_models.PROMPTS, tiny_models.HARMLESS, batch_size=2)
    assert float((a.harmful_mean - b.harmful_mean).abs().max()) < 1e-5


def test_weight_edit_of_disk_offloaded_writers_is_a_clear_error(moe, tmp_path):
    import torch

    from deccp_eval.backends.torch_utils import load_model
    from deccp_eval.base.errors import UsageError
    from deccp_eval.training.abliteration.apply import AbliterationParams, Kernel, orthogonalize_

    model, _ = load_model(str(moe), options=_offload_options(tmp_path).load)
    with pytest.raises(UsageError, match="offloaded to disk"):
        orthogonalize_(
            model,
            torch.ones(model.config.hidden_size),
            AbliterationParams(direction_index=1.0, kernel=Kernel.uniform(2)),
        )


def test_max_memory_parsing_and_misuse():
    from deccp_eval.backends.torch_utils import LoadOptions, load_model, parse_max_memory
    from deccp_eval.base.errors import UsageError

    assert parse_max_memory("0=70GiB, 1=70GiB,cpu=200GiB") == {"0": "70GiB", "1": "70GiB", "cpu": "200GiB"}
    assert parse_max_memory(None) is None
    with pytest.raises(UsageError, match="DEVICE=SIZE"):
        parse_max_memory("70GiB")
    with pytest.raises(UsageError, match="need --device-map"):
        load_model("unused", options=LoadOptions(max_memory={"cpu": "1GiB"}))


def _remote_code_folder(root: Path, moe: Path) -> Path:
    folder = root / "custom"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (moe / name).exists():
            (folder / name).write_bytes((moe / name).read_bytes())
    (folder / "config.json").write_text(
        '{"model_type": "deccp_custom", "architectures": ["CustomModel"], "auto_map": '
        '{"AutoConfig": "configuration_custom.CustomConfig", "AutoModelForCausalLM": "modeling_custom.CustomModel"}}'
    )
    for name in ("configuration_custom.py", "modeling_custom.py"):
        (folder / name).write_text("raise RuntimeError('remote code ran')\n")
    return folder


def test_remote_code_is_off_by_default_and_named_in_the_error(moe, tmp_path):
    folder = _remote_code_folder(tmp_path, moe)
    proc = cli("run", "-m", f"hf:{folder}", "--limit", "1", "--max-tokens", "2", "--db", str(tmp_path / "r.db"))
    assert proc.returncode == 2, proc.stderr
    assert "--trust-remote-code" in proc.stderr and "Traceback" not in proc.stderr
    assert "remote code ran" not in proc.stderr


def test_push_to_hub_uploads_the_folder_with_its_card(moe, tmp_path, monkeypatch):
    """The real huggingface_hub client up to the network: create_repo and upload_folder are replaced."""
    from huggingface_hub import HfApi

    from deccp_eval.base.errors import UsageError
    from deccp_eval.training.abliteration.hub import push_folder

    calls: list[tuple[str, dict]] = []

    def create_repo(self, repo_id, **kw):
        calls.append(("create_repo", {"repo_id": repo_id, "token": self.token, **kw}))

    def upload_folder(self, **kw):
        files = sorted(p.name for p in Path(kw["folder_path"]).iterdir())
        calls.append(("upload_folder", {**kw, "files": files}))
        return type("Info", (), {"commit_url": f"https://huggingface.co/{kw['repo_id']}/commit/abc"})()

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    monkeypatch.setenv("MY_HF_TOKEN", "hf_secret_value_123")
    folder = tmp_path / "abl"
    folder.mkdir()
    for f in moe.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    with pytest.raises(UsageError, match="abliteration.json"):
        push_folder(folder, "me/tiny-abl")
    (folder / "abliteration.json").write_text("{}")
    (folder / "README.md").write_text("---\nbase_model: tiny\ntags: [abliterated, deccp-eval]\n---\n# card\n")
    url = push_folder(folder, "me/tiny-abl", private=True, token_env="MY_HF_TOKEN")
    assert url == "https://huggingface.co/me/tiny-abl/commit/abc"
    (name1, create), (name2, upload) = calls
    assert (name1, name2) == ("create_repo", "upload_folder")
    assert create["repo_id"] == "me/tiny-abl" and create["private"] is True and create["exist_ok"] is True
    assert create["token"] == "hf_secret_value_123"
    assert upload["repo_id"] == "me/tiny-abl" and "README.md" in upload["files"]
    assert "model.safetensors" in upload["files"] and "abliteration.json" in upload["files"]
    with pytest.raises(UsageError, match="OWNER/NAME"):
        push_folder(folder, "no-owner")


def test_push_to_hub_failure_never_shows_the_token(moe, tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    from deccp_eval.base.errors import DeccpError
    from deccp_eval.training.abliteration.hub import push_folder

    def create_repo(self, repo_id, **kw):
        raise RuntimeError(f"401 Unauthorized for token {self.token}")

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_456")
    folder = tmp_path / "abl"
    folder.mkdir()
    for f in moe.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "abliteration.json").write_text("{}")
    (folder / "README.md").write_text("# card\n")
    with pytest.raises(DeccpError) as exc:
        push_folder(folder, "me/tiny-abl")
    assert "401" in str(exc.value) and "hf_secret_value_456" not in str(exc.value)


def test_abliterate_push_to_hub_rejects_a_bad_repo_before_loading(tmp_path):
    proc = cli("abliterate", "deccp-toy", "--out", str(tmp_path / "o"), "--push-to-hub", "not a repo")
    assert proc.returncode == 2 and "OWNER/NAME" in proc.stderr and "Traceback" not in proc.stderr


def test_abliterate_cli_on_a_moe_model_then_push_to_hub(moe, tmp_path, monkeypatch):
    """The whole `abliterate` command on the tiny Qwen3-MoE (search with hooks on the experts, edit per expert,
    save), then --push-to-hub with the hub client's network calls replaced."""
    from click.testing import CliRunner
    from huggingface_hub import HfApi

    from deccp_eval.cli import main
    from deccp_eval.training.abliteration.export import load_record

    uploads: list[list[str]] = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: None)
    monkeypatch.setattr(
        HfApi,
        "upload_folder",
        lambda self, **kw: (
            uploads.append(sorted(p.name for p in Path(kw["folder_path"]).iterdir()))
            or type("I", (), {"commit_url": "https://hf/c"})()
        ),
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "abliterate",
            str(moe),
            "--out",
            str(out),
            "--trials",
            "1",
            "--max-tokens",
            "4",
            "--eval-limit",
            "4",
            "--device",
            "cpu",
            "--study-db",
            str(tmp_path / "s.db"),
            "--push-to-hub",
            "me/tiny-moe-abl",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("https://hf/c")
    record = load_record(out)
    assert any(e.endswith("mlp.experts.down_proj") for e in record.edited)  # the fused experts were edited
    assert any(e.endswith("self_attn.o_proj") for e in record.edited)
    assert uploads and {"README.md", "model.safetensors", "direction.safetensors"} <= set(uploads[0])
    assert "every routed and shared expert" in (out / "README.md").read_text()


def test_gguf_source_finds_the_file(tmp_path):
    """A .gguf path, a folder holding one, several (pick with --gguf-file), or a normal folder."""
    import pytest

    from deccp_eval.backends.torch_utils import gguf_source
    from deccp_eval.base.errors import UsageError

    one = tmp_path / "one"
    one.mkdir()
    (one / "m.Q4_1.gguf").write_bytes(b"GGUF")
    assert gguf_source(str(one / "m.Q4_1.gguf")) == (str(one), "m.Q4_1.gguf")
    assert gguf_source(str(one)) == (str(one), "m.Q4_1.gguf")
    (one / "m.Q8_0.gguf").write_bytes(b"GGUF")
    with pytest.raises(UsageError, match="several GGUF files.*--gguf-file"):
        gguf_source(str(one))
    assert gguf_source(str(one), "m.Q8_0.gguf") == (str(one), "m.Q8_0.gguf")
    with pytest.raises(UsageError, match="holds no nope.gguf"):
        gguf_source(str(one), "nope.gguf")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text("{}")
    assert gguf_source(str(plain)) is None
    assert gguf_source("Qwen/Qwen2-7B-Instruct") is None
