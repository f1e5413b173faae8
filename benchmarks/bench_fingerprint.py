"""Fingerprint cost: a generated 2 GB safetensors file, sampled fingerprint vs reading it in full.

Writes a 2 GB file in the safetensors layout (random bytes, 64 tensors of 32 MB) under a temp
folder, then times (with `--cold`, each after dropping the page cache, root on Linux only, so both
read from disk; it slows everything else on the machine for a while):
  - `file_digest` in the default `sample` mode (header + 4096 evenly spaced 4 KB blocks),
  - a full sha256 of the file (what `DECCP_EVAL_FINGERPRINT=full` does, and the floor of any
    full hash),
  - a cached `model_fingerprint` of the folder (the everyday case: a stat per file).
The sample reads a fixed 16 MB per weight file, so a 15 GB folder in four shards costs about four
times the 2 GB sample time; a full hash grows with the bytes (7.5x the 2 GB time).

    .venv/bin/python benchmarks/bench_fingerprint.py [--gb 2] [--cold] [--smoke]   # last line: ratio_full_vs_sample=X
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

from _common import parse


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def write_file(path: Path, gb: float, tensors: int = 64) -> None:
    size = int(gb * (1 << 30)) // tensors
    header = {
        f"t{i}": {"dtype": "U8", "shape": [size], "data_offsets": [i * size, (i + 1) * size]} for i in range(tensors)
    }
    head = json.dumps(header).encode()
    chunk = os.urandom(1 << 24)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(head)) + head)
        left = size * tensors
        while left:
            n = min(left, len(chunk))
            fh.write(chunk[:n])
            left -= n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--cold", action="store_true", help="drop the page cache before each timing (root)")
    args = parse(ap, gb=0.02)
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/tmp")) as tmp:
        os.environ["DECCP_EVAL_CACHE"] = str(Path(tmp) / "cache")
        from deccp_eval.backends import fingerprint

        folder = Path(tmp) / "model"
        folder.mkdir()
        (folder / "config.json").write_text('{"model_type": "qwen2"}')
        path = folder / "model.safetensors"
        t0 = time.perf_counter()
        write_file(path, args.gb)
        print(f"wrote {path.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

        cold = args.cold and drop_caches()
        t0 = time.perf_counter()
        fingerprint.file_digest(path, "sample")
        sample_s = time.perf_counter() - t0
        if args.cold:
            drop_caches()
        t0 = time.perf_counter()
        fingerprint.file_sha256(path)
        full_s = time.perf_counter() - t0
        fingerprint.model_fingerprint(str(folder))  # fills the digest cache
        t0 = time.perf_counter()
        fingerprint.model_fingerprint(str(folder))
        cached_s = time.perf_counter() - t0

    print(f"page cache dropped: {cold}")
    print(
        f"sample fingerprint: {sample_s:.3f} s   full sha256: {full_s:.2f} s   cached folder: {cached_s * 1e3:.1f} ms"
    )
    # The sample reads a fixed 16 MB per weight file whatever its size; a full hash is linear in bytes.
    print(f"15 GB folder (4 shards) estimate: sample {4 * sample_s:.1f} s, full {full_s * 15 / args.gb:.0f} s")
    print(f"ratio_full_vs_sample={full_s / max(sample_s, 1e-6):.1f}")


if __name__ == "__main__":
    main()
