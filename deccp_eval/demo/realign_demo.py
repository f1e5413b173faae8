"""The demo's re-alignment step (`make demo`, `deccp-eval demo`; `--no-realign` skips it): the abliterated toy,
fine-tuned on gold answers against its censored ones, measured where nobody trained or picked.

The preference set comes from the toy's training phrasings (`deccp-toy-train`, a work store of its
own); the numbers come from the test split of its held-out phrasings (`deccp-toy-heldout`), the same
prompts the demo's leaderboard and the abliteration's record use. Gold references here are the toy's
own uncensored answers (what it says under its "uncensored historian" system prompt), since no API
model is reachable offline; the preference card says their reference model is `facts`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from deccp_eval.backends.contract import BackendOptions, make_backend
from deccp_eval.base.schema import SamplingParams
from deccp_eval.datasets.loading import Dataset, load_dataset
from deccp_eval.run import runner
from deccp_eval.run.gold import import_gold
from deccp_eval.store.db import Store
from deccp_eval.toy.data import HELDOUT_SOURCE, TOPICS, TRAIN_SOURCE, reply
from deccp_eval.toy.model import TOY_JUDGE, TOY_NAME, TOY_VERSION
from deccp_eval.training.preference_pairs import Format, PrefSettings, build, export, facts_gold
from deccp_eval.training.realign import RECORD_FILE, RealignSettings, Recipe, load_record, realign, summary

MODEL = f"abliterated:{TOY_NAME}"  # the seed's pipeline: abliterate, then re-align
MAX_TOKENS = 48
# Picked by scripts/pick_realign_recipe.py on the selection split of the held-out phrasings (never on the
# test split the demo reports): the largest fall in state_aligned + refusal with first-token KL <= 0.05.
DEMO_METHOD = "dpo"
DEMO_RECIPE: dict[str, Any] = {"learning_rate": 5e-4, "max_steps": 20, "batch_size": 8}


def base_fingerprint() -> str:
    """What the re-aligned toy was trained from: the abliterated toy as it is now (toy and edit)."""
    return make_backend(MODEL).fingerprint()


def toy_gold(data: Any) -> list[dict[str, Any]]:
    """Gold rows (for `gold import`): each sensitive prompt's reference is the toy's uncensored answer
    to its topic in the prompt's language, which states the prompt's expected facts."""
    prompts = [
        p.model_copy(update={"expected_facts": [reply(TOPICS[p.category], p.lang, uncensored=True)]})
        for p in data.prompts
        if p.kind == "sensitive"
    ]
    return facts_gold(Dataset(name=data.name, version=data.version, prompts=prompts))


def preference_set(
    work: Path, method: str = DEMO_METHOD, say: Callable[[str], None] = print, command: str | None = None
) -> Path:
    """The abliterated toy's answers and verdicts on the training phrasings, toy gold, and the exported
    preference folder (`work/prefs-METHOD`); `command` is recorded with the run."""
    import json

    work.mkdir(parents=True, exist_ok=True)
    train = load_dataset(TRAIN_SOURCE)
    folder = work / f"prefs-{method}"
    with Store(work / "work.db") as store:
        runner.run(
            store,
            train,
            [MODEL],
            [TOY_JUDGE],
            SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS),
            options={MODEL: BackendOptions(batch_size=32)},
            command=command,
        )
        gold_file = work / "toy-gold.jsonl"
        gold_file.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in toy_gold(train)), encoding="utf-8"
        )
        say(f"  {import_gold(store, gold_file)} gold references (the toy's own uncensored answers)")
        prefs = build(
            store,
            PrefSettings(
                model=MODEL,
                format=cast(Format, method),
                dataset=train.name,
                command=f"deccp-eval prefs export --model {MODEL} --format {method} "
                f"--dataset {train.name} --db {work / 'work.db'} --out {folder}",
            ),
        )
    export(prefs, folder)
    say(f"  preference set: {len(prefs.rows)} rows {prefs.counts()}")
    return folder


def realigned_toy(
    work: Path,
    method: str = DEMO_METHOD,
    recipe: Any = None,
    say: Callable[[str], None] = print,
    command: str | None = None,
) -> Path:
    """The re-aligned abliterated toy (`work/realigned-toy-vN-HASH`), trained once per abliterated toy and
    reused after; `command` is recorded with the preference set's run."""
    out = work / f"realigned-toy-v{TOY_VERSION}-{base_fingerprint()[:10]}"  # a new edit is a new folder
    if (out / RECORD_FILE).exists():
        say(f"  cached: {out} (delete it to train again)")
    else:
        prefs = preference_set(work, method, say, command)
        r = recipe or Recipe(**DEMO_RECIPE)
        realign(
            RealignSettings(
                model=MODEL,
                prefs=prefs,
                out=out,
                method=method,  # type: ignore[arg-type]
                recipe=r,
                eval_dataset=HELDOUT_SOURCE,
                eval_split="test",
                eval_every=1,
                eval_limit=None,
                max_tokens=MAX_TOKENS,
                judge=TOY_JUDGE,
                command=f"deccp-eval realign {MODEL} --prefs {prefs} --method {method} --lr {r.learning_rate} "
                f"--beta {r.beta} --max-steps {r.max_steps} --batch-size {r.batch_size} --eval-dataset "
                f"{HELDOUT_SOURCE} --eval-split test --eval-every 1 --eval-limit 0 --max-tokens {MAX_TOKENS} "
                f"--out {out}",
            )
        )
    for line in summary(load_record(out)):
        say(f"  {line}")
    return out
