"""`abliterate --push-to-hub REPO`: publish the abliterated folder (weights, tokenizer, direction, record and
model card) to the Hugging Face Hub with huggingface_hub. The token comes from an environment variable named
by the user (HF_TOKEN by default) or huggingface_hub's own login; it is never printed or stored."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from deccp_eval.backends.remote import scrub
from deccp_eval.base.errors import DeccpError, MissingDependency, UsageError

REQUIRED_FILES: tuple[str, ...] = ("config.json", "README.md", "abliteration.json")


def check_repo_id(repo: str) -> str:
    """`owner/name` as the hub accepts it; a clear error before any model is loaded."""
    try:
        from huggingface_hub.utils import HFValidationError, validate_repo_id
    except ImportError:
        raise MissingDependency("huggingface_hub", "hf", "--push-to-hub") from None
    if repo.count("/") != 1:
        raise UsageError(f"--push-to-hub {repo!r}: expected OWNER/NAME, e.g. my-user/qwen3-8b-abliterated")
    try:
        validate_repo_id(repo)
    except HFValidationError as exc:
        raise UsageError(f"--push-to-hub {repo!r}: {exc}") from None
    return repo


def push_folder(
    folder: str | Path, repo: str, private: bool = False, token_env: str = "HF_TOKEN", api: Any = None
) -> str:
    """Create the repo if needed and upload the folder in one commit; returns the commit URL."""
    folder = Path(folder)
    check_repo_id(repo)
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if missing or not any(folder.glob("*.safetensors")):
        raise UsageError(f"{folder} is not an abliterated folder (missing {', '.join(missing) or 'safetensors'})")
    token = os.environ.get(token_env) or None
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    try:
        api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(
            repo_id=repo,
            folder_path=str(folder),
            repo_type="model",
            commit_message="Upload abliterated model (deccp-eval)",
            ignore_patterns=[".*", "__pycache__/*"],
        )
    except Exception as exc:  # network, auth, quota: the hub's message without any token in it
        raise DeccpError(scrub(f"upload to {repo} failed: {type(exc).__name__}: {str(exc)[:300]}", [token])) from None
    return str(getattr(info, "commit_url", None) or f"https://huggingface.co/{repo}")
