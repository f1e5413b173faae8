"""Append Chinese forms of each English expected fact to sensitive zh / zh-Hant rows.

The English->Simplified mapping lives in scripts/zh_facts/<category>.py (hand-written translations);
Traditional forms for zh-Hant are converted from it with OpenCC (s2twp, `pip install opencc-python-reimplemented`).
Only categories with a mapping file are updated; re-running is idempotent.
"""

import importlib.util
import json
import pathlib
import sys

import opencc

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "prompts" / "deccp_prompts.jsonl"
MAPS = ROOT / "scripts" / "zh_facts"
s2t = opencc.OpenCC("s2twp")


def load(cat):
    p = MAPS / f"{cat}.py"
    if not p.exists():
        return None
    spec = importlib.util.spec_from_file_location(cat, p)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m.ZH


out, done, counts = [], set(), {}
for line in PROMPTS.read_text(encoding="utf-8").splitlines(keepends=True):
    row = json.loads(line)
    if row.get("kind") == "sensitive" and row["lang"] in ("zh", "zh-Hant"):
        zh = load(row["category"])
        if zh is not None:
            eng = [f for f in row["expected_facts"] if f.isascii() or not any("\u3400" <= c <= "\u9fff" for c in f)]
            missing = [f for f in eng if f not in zh]
            if missing:
                sys.exit(f"{row['id']}: no translation for {missing}")
            new = [zh[f] if row["lang"] == "zh" else s2t.convert(zh[f]) for f in eng]
            row["expected_facts"] = eng + new
            line = json.dumps(row, ensure_ascii=False) + "\n"
            counts[row["lang"]] = counts.get(row["lang"], 0) + 1
            done.add(row["category"])
    out.append(line)
PROMPTS.write_text("".join(out), encoding="utf-8")
print(counts, sorted(done))
