"""What `deccp-eval demo` puts on the terminal and records.

Its output is its own step lines and tables: the libraries' progress bars, TRL's loss dicts and
third-party warnings go to deccp-eval.log unless -v. The demo's noisiest step, re-alignment (loading
the toy, saving the preference set, TRL tokenizing and training, writing the merged model), runs here
at a tiny size in a fresh process set up the way the demo command sets itself up; a whole cold demo
(the abliteration search included) is minutes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What the libraries print when nobody stops them (all seen between the demo's lines before).
MARKERS = (
    "Loading weights",
    "Saving the dataset",
    "Tokenizing train dataset",
    "Writing model shards",
    "train_loss",
    "it/s]",
    "planted library warning",
    "planted transformers warning",
)

SCRIPT = r"""
import sys, warnings
from pathlib import Path

tmp, verbose, train = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "train"
from deccp_eval.commands.common import setup_logging

setup_logging(tmp / "deccp.db", verbose, quiet_libraries=True)  # what `deccp-eval demo` does

from deccp_eval.toy import data as td
from deccp_eval.training.preference_pairs import PrefSettings, build, export
from deccp_eval.training.realign import Recipe, RealignSettings, realign
from deccp_eval.store.db import Store
from tests.test_realign import MODEL, fill_store

warnings.warn("planted library warning")  # what torch or TRL raise through `warnings`
from transformers.utils import logging as tlog

tlog.get_logger("transformers.modeling_utils").warning("planted transformers warning")
data = fill_store(tmp / "s.db")
with Store(tmp / "s.db") as store:
    export(build(store, PrefSettings(model=MODEL, format="dpo", dataset=data.name)), tmp / "prefs")
if train:
    realign(RealignSettings(model="deccp-toy", prefs=tmp / "prefs", out=tmp / "out", method="dpo",
                            recipe=Recipe(max_steps=2, batch_size=4), eval_dataset=td.HELDOUT_SOURCE,
                            eval_split="test", eval_every=1, eval_limit=2, max_tokens=8, device="cpu"))
else:
    from deccp_eval.toy import model as toy
    from deccp_eval.backends.torch_utils import load_model

    load_model(str(toy.build()), device="cpu")
print("own line")
"""


def _run(tmp: Path, verbose: int, train: bool) -> tuple[str, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp), str(verbose), "train" if train else "load"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr, (tmp / "deccp-eval.log").read_text(encoding="utf-8")


def test_library_output_goes_to_the_log_file_not_the_terminal(tmp_path: Path, toy_path: Path) -> None:
    terminal, log = _run(tmp_path, verbose=0, train=True)
    assert "own line" in terminal
    assert [m for m in MARKERS if m in terminal] == []
    assert "train_loss" in log  # TRL's dict, through the trainer's log callback
    assert "planted library warning" in log and "planted transformers warning" in log
    assert "it/s]" not in log  # bars are off, not redirected


def test_verbose_shows_library_output(tmp_path: Path, toy_path: Path) -> None:
    terminal, _ = _run(tmp_path, verbose=1, train=False)
    for marker in ("Loading weights", "Saving the dataset", "planted library warning", "planted transformers warning"):
        assert marker in terminal, marker


DEMO = r"""
import sys
from pathlib import Path

from deccp_eval.demo import demo, real_models_demo
from deccp_eval.cli import main
from deccp_eval.base.errors import MissingDependency


def no_abliteration(console):  # the abliteration search is minutes cold; the demo skips a missing step
    raise MissingDependency("optuna", "abliterate", "This test's demo")


demo._abliterated_toy = no_abliteration
real_models_demo.DEV_FILE = Path(sys.argv[2])  # a few of SpeechMap's answers, not 1,818
sys.argv = ["deccp-eval", "demo", "--limit", "1", "--no-realign", "--db", sys.argv[1]]
main()
"""


def test_demo_runs_record_their_command(tmp_path: Path, toy_path: Path) -> None:
    """`publish` names the demo's command and step for each run the demo made (it said `(not recorded)`),
    and the demo's own terminal output, end to end, has no library output in it."""

    from conftest import cli

    from deccp_eval.demo.real_models_demo import DEV_FILE
    from deccp_eval.store.db import Store

    lines = DEV_FILE.read_text(encoding="utf-8").splitlines()
    small = tmp_path / "speechmap_small.jsonl"
    small.write_text(
        "\n".join(line for line in lines if '"anthropic/claude-3-5-sonnet-20241022"' in line) + "\n", encoding="utf-8"
    )
    db = tmp_path / "results" / "deccp.db"
    proc = subprocess.run(
        [sys.executable, "-c", DEMO, str(db), str(small)], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    terminal = proc.stdout + proc.stderr
    assert "1/5 toy model" in terminal and "| model |" in terminal
    assert [m for m in MARKERS if m in terminal] == []
    command = f"deccp-eval demo --limit 1 --no-realign --db {db}"
    cli("publish", "--db", str(db), "--out", str(tmp_path / "bundle"), check=True)
    card = (tmp_path / "bundle" / "README.md").read_text(encoding="utf-8")
    assert f"`{command} # step 2/5: hf:deccp-toy`" in card and "(not recorded)" not in card
    with Store(db.parent / "real_models.db") as store:
        assert [r.config["command"] for r in store.runs()] == [f"{command} # step 5/5: real models"]
