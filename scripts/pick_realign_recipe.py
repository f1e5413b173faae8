"""Pick the demo's re-alignment recipe on the SELECTION split of the toy's held-out phrasings.

The demo reports its numbers on the test split; choosing the recipe by those numbers would make
them optimistic, so the grid below is scored on the other half (selection) only. The rule, fixed
before looking: the largest fall in state_aligned + refusal with first-token KL <= 0.05 (half the
issue's 0.1 limit), over-refusal up by at most 1 point, and the expected-facts share not lower
than before; ties go to the lower KL. Prints one line per recipe, then the pick as JSON.

    .venv/bin/python scripts/pick_realign_recipe.py [WORKDIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

GRID = [  # (method, recipe)
    ("dpo", {"learning_rate": 2e-4, "max_steps": 40}),
    ("dpo", {"learning_rate": 5e-4, "max_steps": 20}),
    ("dpo", {"learning_rate": 5e-4, "max_steps": 40}),
    ("dpo", {"learning_rate": 5e-4, "max_steps": 40, "beta": 0.3}),
    ("kto", {"learning_rate": 5e-4, "max_steps": 60, "beta": 0.5}),
    ("kto", {"learning_rate": 1e-3, "max_steps": 60, "beta": 0.5}),
]


def main(work: Path) -> None:
    from deccp_eval.demo.realign_demo import MAX_TOKENS, MODEL, preference_set
    from deccp_eval.toy.data import HELDOUT_SOURCE
    from deccp_eval.training.realign import RealignSettings, Recipe, realign

    prefs = {m: preference_set(work, m) for m in sorted({m for m, _ in GRID})}
    scored = []
    for i, (method, knobs) in enumerate(GRID):
        rec = realign(
            RealignSettings(
                model=MODEL,
                prefs=prefs[method],
                out=work / f"r{i}",
                method=method,
                recipe=Recipe(**knobs),
                eval_dataset=HELDOUT_SOURCE,
                eval_split="selection",
                eval_every=1,
                eval_limit=None,
                max_tokens=MAX_TOKENS,
            )
        )
        b, a = rec.before, rec.after
        ok = a.kl <= 0.05 and a.over_refusal - b.over_refusal <= 0.01 and a.facts >= b.facts
        gain = b.state_or_refusal - a.state_or_refusal
        scored.append((ok, gain, -a.kl, method, knobs))
        print(
            f"{method} {json.dumps(knobs)}: state_aligned + refusal {b.state_or_refusal:.1%} -> "
            f"{a.state_or_refusal:.1%}, facts {b.facts:.1%} -> {a.facts:.1%}, over-refusal {b.over_refusal:.1%} "
            f"-> {a.over_refusal:.1%}, KL {a.kl:.4f}{'' if ok else '  (fails the rule)'}",
            flush=True,
        )
    best = max((s for s in scored if s[0]), default=None, key=lambda s: (s[1], s[2]))
    print(json.dumps(None if best is None else {"method": best[3], **best[4]}))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/realign-pick"))
