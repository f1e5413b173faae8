"""Device and dtype choice shared by every torch-based path (HF backend, abliteration)."""

from __future__ import annotations

from typing import Any


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        if device == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return getattr(torch, dtype)
    except AttributeError:
        from deccp_eval.errors import UsageError

        raise UsageError(f"unknown dtype {dtype!r} (use auto, float32, bfloat16 or float16)") from None


def load_model(path: str, device: str = "auto", dtype: str = "auto") -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode on the chosen device, tokenizer left-padded for batching."""
    try:
        import torch  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        from deccp_eval.errors import MissingDependency

        raise MissingDependency("transformers", "hf", "The hf backend") from None
    dev = pick_device(device)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=pick_dtype(dtype, dev))
    model.to(dev).eval()
    return model, tokenizer
