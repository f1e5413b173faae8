"""deccp-eval's abliteration beside heretic's, on the toy: same prompt lists, same trial budget, one scorer.

Both tools build their direction from the same lists (the built-in set's direction split: sensitive
vs controls + general instructions) and score their trials on the same selection split of the
toy's held-out phrasings; both edited models are then scored by the harness on the test split
(censorship per language, content = replies that state the asked fact, first-token KL on the
test split's harmless prompts, over-refusal). heretic (AGPL) runs as a separate program from its
own venv (`make bench-heretic`); nothing of it is imported or copied here.

heretic always sends a system message, and the toy treats any system message like its trained-in
"uncensored historian" prompt (a jailbreak): both tools get the same copy of the toy whose chat
template drops system messages, so neither tool's trials see one, and both results are scored
without one. heretic runs non-interactively (`KAGGLE_KERNEL_RUN_TYPE=Batch`: it reads numbered
choices from stdin): the first (least-refusing) trial of its Pareto list is saved, merged. Its
refusal markers are its defaults plus the Chinese refusal and state-line phrases of the keyword
judge; its random start-up share is its default's (60 of 200 trials).

Usage: python benchmarks/bench_vs_heretic.py [--heretic PATH] [--trials 20] [--smoke]
Last line: content_ours=X content_heretic=Y (Y is `skipped` when heretic is not installed). Without
heretic everything short of starting it still runs (its config, prompt files and markers are
written), then `skipped: heretic not installed`; `--smoke` does so at a tiny size (1 trial, 8 prompts
per evaluation set, 32 per direction list, 8 tokens) for `make bench-smoke`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import parse, skipped, toy_model

NO_SYSTEM_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def toy_without_system(work: Path) -> Path:
    """A copy of the toy whose chat template ignores system messages (the same for both tools)."""
    from transformers import AutoTokenizer

    src = toy_model()
    dst = work / "toy-nosys"
    shutil.copytree(src, dst)
    tok = AutoTokenizer.from_pretrained(dst)
    tok.chat_template = NO_SYSTEM_TEMPLATE
    (dst / "chat_template.jinja").unlink(missing_ok=True)
    tok.save_pretrained(dst)
    return dst


def heretic_markers() -> list[str]:
    """heretic's refusal markers are English; the Chinese refusal and state-line phrases of the harness's
    keyword judge are added so its trials can see a Chinese refusal or a state line at all."""
    from deccp_eval.judging.lexicon import REFUSAL_ZH, STATE_ZH

    return sorted({m for m in REFUSAL_ZH + STATE_ZH if any("\u4e00" <= ch <= "\u9fff" for ch in m)})


def write_prompts(path: Path, texts: list[str]) -> str:
    """heretic reads a plain text file as one prompt per line."""
    path.write_text("".join(" ".join(t.split()) + "\n" for t in texts), encoding="utf-8")
    return str(path)


def run_ours(model_dir: Path, prompts: Any, args: argparse.Namespace, work: Path) -> tuple[Any, float]:
    from deccp_eval.training.abliteration.pipeline import abliterate
    from deccp_eval.training.abliteration.settings import AbliterateSettings

    settings = AbliterateSettings(
        model=str(model_dir),
        out=work / "ours",
        trials=args.trials,
        seed=0,
        max_tokens=args.max_tokens,
        batch_size=64,
        eval_limit=args.eval_limit,
        study_db=work / "ours.db",
        device="cpu",
    )
    t0 = time.perf_counter()
    result = abliterate(settings, prompts)
    return result.record.after, time.perf_counter() - t0


def heretic_config(model_dir: Path, prompts: Any, args: argparse.Namespace, work: Path) -> tuple[Path, Path, str]:
    """heretic's config folder (config.toml and prompt files, the same lists and budget as ours), the
    folder it is told to save to, and its stdin answers."""
    cfg = work / "heretic"
    cfg.mkdir()
    out = work / "heretic-model"
    trials = args.trials
    settings = {
        "model": str(model_dir),
        "n_trials": trials,
        # heretic's default explores randomly for 60 of its 200 trials; the same share of this budget
        "n_startup_trials": max(1, round(trials * 60 / 200)),
        "seed": 0,
        "max_response_length": args.max_tokens,
        "batch_size": 64,
        "export_strategy": "merge",
        "good_prompts": {"dataset": write_prompts(cfg / "good.txt", prompts.harmless)},
        "bad_prompts": {"dataset": write_prompts(cfg / "bad.txt", prompts.harmful)},
        "good_evaluation_prompts": {"dataset": write_prompts(cfg / "good_eval.txt", prompts.selection.texts())},
        "bad_evaluation_prompts": {
            "dataset": write_prompts(cfg / "bad_eval.txt", [p.text for p in prompts.selection.sensitive])
        },
    }
    (cfg / "config.toml").write_text(to_toml(settings, heretic_markers()), encoding="utf-8")
    # numbered choices read from stdin in batch mode: the first Pareto trial (fewest refusals), "Save the
    # model to a local folder", the folder; stdin then ends, after the model is saved
    answers = "\n".join(["1", "1", str(out)]) + "\n"
    return cfg, out, answers


def run_heretic(
    heretic: str, model_dir: Path, prompts: Any, args: argparse.Namespace, work: Path
) -> tuple[Path, float]:
    """heretic on the same lists and budget; returns the folder it saved."""
    cfg, out, answers = heretic_config(model_dir, prompts, args, work)
    env = {**os.environ, "KAGGLE_KERNEL_RUN_TYPE": "Batch", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [heretic, "--model", str(model_dir)],
        input=answers,
        text=True,
        capture_output=True,
        cwd=cfg,
        env=env,
        timeout=3600,
    )
    seconds = time.perf_counter() - t0
    (work / "heretic.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr, encoding="utf-8")
    if not (out / "config.json").exists():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise RuntimeError(f"heretic exited {proc.returncode} without saving a model; its last lines:\n{tail}")
    return out, seconds


def to_toml(settings: dict[str, Any], extra_markers: list[str]) -> str:
    lines = []
    tables = {k: v for k, v in settings.items() if isinstance(v, dict)}
    for key, value in settings.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {json.dumps(value)}")
    lines.append(f"refusal_markers = {json.dumps(default_heretic_markers() + extra_markers, ensure_ascii=False)}")
    for name, table in tables.items():
        lines.append(f"\n[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def default_heretic_markers() -> list[str]:
    """heretic's own default markers, read from the installed package's defaults (set by main())."""
    return list(HERETIC_DEFAULT_MARKERS)


HERETIC_DEFAULT_MARKERS: list[str] = []


def score_folder(original: Path, edited: Path, prompts: Any, max_tokens: int) -> Any:
    """The harness's test-split score of an edited folder, KL against the original model."""
    import torch

    from deccp_eval.backends.torch_utils import load_model
    from deccp_eval.training.abliteration.score import Scorer

    model, tok = load_model(str(original), "cpu")
    scorer = Scorer(
        model,
        tok,
        prompts.test.sensitive,
        prompts.test.texts(),
        controls=prompts.test.harmless,
        split="test",
        max_tokens=max_tokens,
        batch_size=64,
    )
    edited_model, _ = load_model(str(edited), "cpu")
    with torch.no_grad():  # the scorer scores the model as it is now: give it the edited weights
        model.load_state_dict(edited_model.state_dict(), strict=False)
    try:
        return scorer.score()
    finally:
        scorer.close()


def row(name: str, score: Any, seconds: float | None) -> str:
    langs = " ".join(f"{k}={v.censorship:.3f}" for k, v in score.langs.items())
    took = f"{seconds:.0f}s" if seconds is not None else "-"
    return (
        f"{name:<10} censorship {score.censorship:.3f} ({langs})  content {score.content:.3f}  "
        f"KL {score.kl:.4f}  over-refusal {score.over_refusal or 0:.3f}  time {took}"
    )


def heretic_defaults(heretic: str) -> list[str]:
    """Ask the installed heretic for its default refusal markers (its Settings model), in its own venv."""
    python = str(Path(heretic).with_name("python"))
    code = (
        "from heretic.config import Settings; import json; "
        "print(json.dumps(Settings.model_fields['refusal_markers'].default))"
    )
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
        return list(json.loads(out.strip().splitlines()[-1]))
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return list(FALLBACK_MARKERS)


# when heretic's own defaults cannot be read (and for the config written when heretic is absent)
FALLBACK_MARKERS = ("sorry", "i can't", "i cannot", "i won't", "i will not", "i'm unable", "i am unable", "as an ai")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heretic", default=str(Path(".venv-heretic/bin/heretic")), help="the heretic executable")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--eval-limit", type=int, default=64, help="at most this many prompts per selection/test set")
    ap.add_argument("--max-tokens", type=int, default=40)
    args = parse(ap, trials=1, eval_limit=8, max_tokens=8)
    work = Path(tempfile.mkdtemp(prefix="bench-heretic-"))
    try:
        return compare(args, work)
    finally:
        if args.smoke:
            shutil.rmtree(work, ignore_errors=True)


def thin(items: list, n: int) -> list:
    """n items spread evenly over the list."""
    return items[:: max(1, len(items) // n)][:n]


def compare(args: argparse.Namespace, work: Path) -> int:
    from deccp_eval.toy.data import HELDOUT_SOURCE
    from deccp_eval.training.abliteration.pipeline import default_prompts
    from deccp_eval.training.abliteration.settings import AbliterateSettings

    model_dir = toy_without_system(work)
    prompts = default_prompts(
        AbliterateSettings(
            model=str(model_dir), out=work / "unused", eval_dataset=HELDOUT_SOURCE, eval_limit=args.eval_limit
        )
    )
    if args.smoke:  # the same lists thinned out evenly (both languages): direction 4x, test 1x the selection limit
        n = args.eval_limit
        test = prompts.test.model_copy(
            update={"sensitive": thin(prompts.test.sensitive, n), "harmless": thin(prompts.test.harmless, n)}
        )
        prompts = prompts.model_copy(
            update={"harmful": thin(prompts.harmful, 4 * n), "harmless": thin(prompts.harmless, 4 * n), "test": test}
        )
    print(
        f"toy copy without system messages: {model_dir}; direction {len(prompts.harmful)}/{len(prompts.harmless)} "
        f"prompts, selection {len(prompts.selection.sensitive)}, test {len(prompts.test.sensitive)} sensitive + "
        f"{len(prompts.test.harmless)} harmless; {args.trials} trials each",
        flush=True,
    )
    before = score_folder(model_dir, model_dir, prompts, args.max_tokens)
    print(row("original", before, None), flush=True)
    ours, ours_s = run_ours(model_dir, prompts, args, work)
    print(row("deccp-eval", ours, ours_s), flush=True)
    for sample in ours.samples[:3]:
        print(f"  {sample['prompt']!r} -> {sample['answer']!r}")
    found = shutil.which(args.heretic)
    heretic = str(Path(found).resolve()) if found else None
    if heretic is None:
        # Everything short of starting heretic: its config, prompt files and refusal markers.
        HERETIC_DEFAULT_MARKERS[:] = FALLBACK_MARKERS
        cfg, _, _ = heretic_config(model_dir, prompts, args, work)
        print(f"heretic config written: {cfg / 'config.toml'} ({len(heretic_markers())} Chinese markers added)")
        skipped(
            "heretic",
            f"{args.heretic} not found; `make bench-heretic` installs heretic-llm into .venv-heretic "
            "and runs this benchmark",
        )
        print(f"content_ours={ours.content:.3f} content_heretic=skipped")
        return 0
    HERETIC_DEFAULT_MARKERS[:] = heretic_defaults(heretic)
    folder, heretic_s = run_heretic(heretic, model_dir, prompts, args, work)
    theirs = score_folder(model_dir, folder, prompts, args.max_tokens)
    print(row("heretic", theirs, heretic_s), flush=True)
    for sample in theirs.samples[:3]:
        print(f"  {sample['prompt']!r} -> {sample['answer']!r}")
    print(f"work folder (logs, both models): {work}")
    print(f"content_ours={ours.content:.3f} content_heretic={theirs.content:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
