"""A normal (not editable) install: the wheel holds the one package `deccp_eval` with the folders
mapped into it (plugins/, judges/, prompts/ become deccp_eval.plugins etc., never top-level modules of
their own) and the data files, and the installed CLI finds every built-in and reads the prompt set,
the judge templates and the report template."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deccp_eval import __version__

ROOT = Path(__file__).resolve().parents[1]


def _build_wheel(tmp_path: Path) -> Path:
    """Build from a copy of what the wheel needs, so no build/ or egg-info lands in the checkout. Without
    build isolation when this environment can build it (no download), else pip fetches the build tools."""
    src = tmp_path / "src"
    for name in ("pyproject.toml", "README.md"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    for folder in ("deccp_eval", "plugins", "judges", "prompts"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    try:
        import setuptools
        import wheel  # noqa: F401

        local = int(setuptools.__version__.split(".")[0]) >= 77
    except ImportError:
        local = False
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(src)]
    subprocess.run(
        cmd + (["--no-build-isolation"] if local else []), check=True, cwd=tmp_path, timeout=600, capture_output=True
    )
    return next((tmp_path / "dist").glob("deccp_eval-*.whl"))


@pytest.mark.slow
def test_the_wheel_installs_one_package_with_every_built_in_and_the_data(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"deccp_eval", f"deccp_eval-{__version__}.dist-info"}
    for data in (
        "deccp_eval/prompts/deccp_prompts.jsonl",
        "deccp_eval/prompts/templates/censorship_judge.j2",
        "deccp_eval/analysis/report/report.html.j2",
        "deccp_eval/judges/models/deccp-clf.npz",
        "deccp_eval/review/static/index.html",
    ):
        assert data in names, data
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # The unpacked wheel first on the path, run from a folder outside the checkout: what an install sees.
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = (
        "import deccp_eval, importlib.util as u; from deccp_eval.judging import templates; "
        "from deccp_eval.datasets.loading import load_dataset; from deccp_eval.analysis.report import render; "
        "print(deccp_eval.__file__); print([m for m in ('plugins', 'judges', 'prompts') if u.find_spec(m)]); "
        "print(len(load_dataset('deccp').prompts), len(load_dataset('deccp-harmless').prompts)); "
        "print(bool(templates.source('censorship_judge.j2')), bool(templates.source('reference_judge.j2'))); "
        "print(render.environment().get_template(render.TEMPLATE).filename)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0].startswith(str(site)) and out[1] == "[]"
    assert all(int(n) > 0 for n in out[2].split()) and out[3] == "True True" and out[4].startswith(str(site))
    listing = subprocess.run(
        [sys.executable, "-m", "deccp_eval.cli", "plugins"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in (
        "hf",
        "vllm",
        "abliterated",
        "openai",
        "anthropic",
        "clf",
        "keyword",
        "llm",
        "panel",
        "cascade",
        "deccp",
        "deccp-harmless",
        "speechmap-china",
        "deccp-toy-heldout",
        "deccp-toy-train",
    ):
        assert f"\n  {name} " in listing, name
    assert (
        str(site)
        in subprocess.run(
            [sys.executable, "-c", "import deccp_eval.plugins.hf as m; print(m.__file__)"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
