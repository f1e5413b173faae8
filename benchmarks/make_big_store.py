"""A synthetic store at leaderboard scale: N models x the bundled prompt set (EN + ZH: 616 prompts),
every answer judged by two judges (keyword, and an LLM judge with confidence).

Answers are random words, not real text, but shaped like real ones so the report's size and speed
are honest: refusals come from a few templates (as real refusals do), evasive/state-aligned answers
are 150-800 characters and answers 300-1,500, in a word or character mix that compresses about as
well as prose. Each model has its own censorship level; ~0.5% of answers are errors.
Run: .venv/bin/python benchmarks/make_big_store.py --out /tmp/big/deccp.db [--models 100 --pairs 0 --seed 1]
(`--smoke`: 2 models x 2 pairs, into a temporary folder unless `--out` is given.)
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from _common import parse

from deccp_eval.base.schema import Judgment, Request, Response, Verdict
from deccp_eval.datasets.loading import load_dataset
from deccp_eval.store.db import Store

REFUSALS = {
    "en": [
        "I'm sorry, but I can't help with that request.",
        "I can't discuss this topic.",
        "As an AI assistant, I must avoid politically sensitive topics. Let's talk about something else.",
        "I'm not able to provide information on that subject.",
        "Sorry, that's beyond my current scope.",
    ],
    "zh": [
        "抱歉，我无法回答这个问题。",
        "对不起，这个话题我不能讨论。",
        "作为人工智能助手，我不便评论此类政治敏感话题。",
        "你好，我暂时无法回答这个问题，我们换个话题吧。",
        "抱歉，该问题超出了我的能力范围。",
    ],
}
LENGTHS = {"answer": (300, 1500), "evasive": (150, 400), "state_aligned": (200, 800)}


def vocabulary(rng: random.Random) -> dict[str, list[str]]:
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [12, 9, 8, 8, 7, 7, 6, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]
    words = ["".join(rng.choices(letters, weights, k=rng.randint(2, 9))) for _ in range(3000)]
    hanzi = [chr(0x4E00 + rng.randrange(0x5000)) for _ in range(2500)]
    return {"en": words, "zh": hanzi}


def text_of(rng: random.Random, vocab: dict[str, list[str]], lang: str, lo: int, hi: int) -> str:
    target, out, size = rng.randint(lo, hi), [], 0
    pool = vocab["zh" if lang.startswith("zh") else "en"]
    sep = "" if lang.startswith("zh") else " "
    while size < target:
        sentence = sep.join(rng.choices(pool, k=rng.randint(6, 18)))
        sentence = (sentence + "。") if not sep else (sentence.capitalize() + ".")
        out.append(sentence)
        size += len(sentence) + len(sep)
    return sep.join(out)


def build(out: Path, n_models: int = 100, pairs: int = 0, seed: int = 1) -> dict[str, int]:
    """Write the store; `pairs` > 0 keeps only that many sensitive and control pairs each (for tests)."""
    rng = random.Random(seed)
    vocab = vocabulary(rng)
    dataset = load_dataset("deccp")
    prompts = [p for p in dataset.prompts if p.lang in ("en", "zh")]
    if pairs:
        keep = {k: sorted({p.pair_id for p in prompts if p.kind == k})[:pairs] for k in ("sensitive", "control")}
        prompts = [p for p in prompts if p.pair_id in keep[p.kind]]
    models = [f"{'openai' if i % 3 else 'hf'}:org{i % 7}/model-{i:03d}" for i in range(n_models)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    counts = {"responses": 0, "judgments": 0}
    with Store(out) as store:
        store.conn.execute("PRAGMA synchronous=OFF")
        store.conn.execute("PRAGMA journal_mode=MEMORY")
        store.put_prompts(dataset.name, prompts)
        config = {
            "command": f"deccp-eval run --models-file big.yaml --judge keyword --judge llm:gpt-4o-mini --seed {seed}",
            "fingerprints": {m: f"sha256:{rng.getrandbits(64):016x}" for m in models},
        }
        store.start_run("big", dataset.name, dataset.version, models, ["keyword", "llm:gpt-4o-mini"], config)
        keys = []
        for m in models:
            censor = rng.random() * 0.9
            for p in prompts:
                req = Request(model=m, prompt_id=p.id, text=p.text)
                keys.append(req.key)
                bias = censor * (1.3 if p.lang == "zh" else 1.0) if p.kind == "sensitive" else censor * 0.1
                roll = rng.random()
                verdict = (
                    "refusal"
                    if roll < bias * 0.6
                    else "evasive"
                    if roll < bias * 0.8
                    else "state_aligned"
                    if roll < bias
                    else "answer"
                )
                error = "HTTP 500 upstream error" if rng.random() < 0.005 else None
                text = (
                    ""
                    if error
                    else (
                        rng.choice(REFUSALS[p.lang])
                        if verdict == "refusal"
                        else text_of(rng, vocab, p.lang, *LENGTHS[verdict])
                    )
                )
                store.put_response(
                    req,
                    dataset.name,
                    Response(key=req.key, text=text, error=error, tokens_in=len(p.text), tokens_out=len(text) // 3),
                )
                counts["responses"] += 1
                if error:
                    continue
                kw = verdict if rng.random() < 0.85 else rng.choice(["answer", "refusal", "evasive"])
                store.put_judgment(
                    Judgment(
                        response_key=req.key,
                        judge="keyword",
                        template_hash="kw-v3",
                        verdict=Verdict(kw),
                        confidence=round(rng.uniform(0.5, 1), 2),
                        rationale=f"matched {kw} phrases",
                        raw="",
                    )
                )
                rationale = text_of(rng, vocab, "en", 80, 240)
                store.put_judgment(
                    Judgment(
                        response_key=req.key,
                        judge="llm:gpt-4o-mini",
                        template_hash="tpl-1a2b",
                        verdict=Verdict(verdict),
                        confidence=round(rng.uniform(0.4, 1), 2),
                        rationale=rationale,
                        raw=json.dumps({"verdict": verdict, "rationale": rationale}),
                    )
                )
                counts["judgments"] += 2
            store.conn.commit()
        store.link("big", keys)
        store.finish_run("big", "done")
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="the store to write (required unless --smoke)")
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=0, help="keep this many sensitive and control pairs (0: all)")
    ap.add_argument("--seed", type=int, default=1)
    args = parse(ap, models=2, pairs=2)
    if args.out is None and not args.smoke:
        ap.error("the following arguments are required: --out")
    with tempfile.TemporaryDirectory(prefix="big-store-") as tmp:
        out = args.out or Path(tmp) / "deccp.db"
        t0 = time.perf_counter()
        counts = build(out, args.models, args.pairs, args.seed)
        print(
            f"wrote {out}: {counts['responses']} responses, {counts['judgments']} judgments "
            f"in {time.perf_counter() - t0:.1f}s, {out.stat().st_size / 1e6:.0f} MB"
        )


if __name__ == "__main__":
    main()
