"""Content fingerprints of what a model spec points at, so a changed model is never served from cache.

A local folder's fingerprint hashes every file's relative name and size; small files (config,
tokenizer, chat template, generation config) in full; each weight file's safetensors header (names,
dtypes, shapes, offsets, metadata) in full plus a sample of SAMPLE_BLOCKS evenly spaced blocks of
its bytes. So any edit that rewrites a whole tensor larger than size/SAMPLE_BLOCKS bytes (what
abliteration and fine-tuning do) is always seen, while a 15 GB folder costs a few hundred MB of
reads at most. Per-file digests are cached by (path, size, mtime, ctime, inode): `touch` only costs a
re-hash that gives the same answer; new bytes give a new one. `DECCP_EVAL_FINGERPRINT=full` hashes
weight files in full instead (still cached).

A hub id's fingerprint is its resolved commit sha: from huggingface_hub's local cache, else asked
of the hub (one request, 3 s at most; skipped with HF_HUB_OFFLINE=1), else the id and the revision
string as given.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from pathlib import Path

from deccp_eval.base.schema import canonical_hash

SAMPLE_BLOCKS = 4096
BLOCK = 4096
FULL_HASH_BELOW = 16 * 1024 * 1024  # files smaller than this are hashed in full
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".onnx", ".ckpt")
CACHE_FILE = "fingerprints.json"
_lock = threading.Lock()


def _cache_path() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("DECCP_EVAL_CACHE", user_cache_dir("deccp-eval"))) / CACHE_FILE


def _load_cache() -> dict[str, str]:
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_cache(cache: dict[str, str]) -> None:
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)  # atomic: concurrent workers never read half a file
    except OSError:
        pass  # a read-only cache only costs time


def _mode() -> str:
    return "full" if os.environ.get("DECCP_EVAL_FINGERPRINT", "").lower() == "full" else "sample"


def _safetensors_header(fh, size: int) -> bytes:
    """The JSON header (tensor names, dtypes, shapes, offsets, __metadata__), or b"" if not safetensors."""
    head = fh.read(8)
    if len(head) < 8:
        return b""
    (length,) = struct.unpack("<Q", head)
    if length <= 0 or length > min(size - 8, 100 * 1024 * 1024):
        return b""
    return fh.read(length)


def file_sha256(path: Path) -> str:
    """The full sha256 of a file, read in blocks (provenance of data and model files)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: Path, mode: str | None = None) -> str:
    """Digest of one file: in full when small or in `full` mode, else header + evenly spaced samples."""
    mode = mode or _mode()
    size = path.stat().st_size
    h = hashlib.sha256()
    h.update(str(size).encode())
    with path.open("rb") as fh:
        # Tokenizer, config and chat-template files are always hashed in full, whatever their size.
        if size < FULL_HASH_BELOW or mode == "full" or not path.name.lower().endswith(WEIGHT_SUFFIXES):
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
            return h.hexdigest()
        if path.suffix.lower() == ".safetensors":
            h.update(_safetensors_header(fh, size))
        stride = size / SAMPLE_BLOCKS
        for i in range(SAMPLE_BLOCKS):
            fh.seek(int(i * stride))
            h.update(fh.read(BLOCK))
        fh.seek(max(size - BLOCK, 0))
        h.update(fh.read(BLOCK))
    return h.hexdigest()


def _cached_digest(path: Path, cache: dict[str, str], mode: str) -> tuple[str, bool]:
    st = path.stat()
    slot = f"{mode}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"
    if slot in cache:
        return cache[slot], False
    digest = file_digest(path, mode)
    cache[slot] = digest
    return digest, True


def folder_fingerprint(folder: str | Path) -> str:
    """Content fingerprint of a model folder (every file below it, hidden ones and .git aside)."""
    root = Path(folder)
    mode = _mode()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    with _lock:
        cache = _load_cache()
        changed = False
        parts = []
        for p in files:
            digest, new = _cached_digest(p, cache, mode)
            changed |= new
            parts.append([p.relative_to(root).as_posix(), p.stat().st_size, digest])
        if changed:
            _save_cache(_prune(cache))
    return "dir:" + canonical_hash({"mode": mode, "files": parts})[:32]


def _prune(cache: dict[str, str], keep: int = 20000) -> dict[str, str]:
    """Bound the cache file: keep the newest `keep` entries (dicts keep insertion order)."""
    return cache if len(cache) <= keep else dict(list(cache.items())[-keep:])


def hub_fingerprint(repo_id: str, revision: str | None = None) -> str:
    """The commit sha huggingface_hub resolved for this repo and revision, when cached locally."""
    sha = None
    try:
        from huggingface_hub import constants
        from huggingface_hub.file_download import repo_folder_name

        ref = revision or "main"
        folder = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")
        if len(ref) == 40 and all(c in "0123456789abcdef" for c in ref):
            sha = ref
        elif (folder / "refs" / ref).is_file():
            sha = (folder / "refs" / ref).read_text(encoding="utf-8").strip()
    except (ImportError, OSError, ValueError):
        sha = None
    if not sha and os.environ.get("HF_HUB_OFFLINE", "").lower() not in ("1", "true", "yes"):
        sha = _remote_sha(repo_id, revision)
    if sha:
        return f"hub:{repo_id}@{sha}"
    return f"hub:{repo_id}@{revision or 'main'} (unresolved)"


def _remote_sha(repo_id: str, revision: str | None) -> str | None:
    """The hub's commit sha for a repo not yet downloaded (one short request), so the first run
    and the runs after the download share keys; None offline or on any error."""
    try:
        from huggingface_hub import HfApi

        return HfApi().model_info(repo_id, revision=revision, timeout=3).sha
    except Exception:  # offline, unknown repo, gated, rate limited: fall back to the id
        return None


def content_digest(path: Path) -> str:
    """The sha256 of a file's size and every byte (`file_digest` in full mode), cached like the
    fingerprints by (path, size, mtime, ctime, inode): a key for what is derived from a file."""
    with _lock:
        cache = _load_cache()
        digest, new = _cached_digest(Path(path), cache, "full")
        if new:
            _save_cache(_prune(cache))
    return digest


def model_fingerprint(model: str, revision: str | None = None) -> str:
    """A local folder's content fingerprint, else the hub id's resolved revision."""
    path = Path(model).expanduser()
    if path.is_dir():
        return folder_fingerprint(path)
    if path.is_file():  # a single-file model (GGUF)
        with _lock:
            cache = _load_cache()
            digest, new = _cached_digest(path, cache, _mode())
            if new:
                _save_cache(_prune(cache))
        return "file:" + digest[:32]
    return hub_fingerprint(model, revision)
