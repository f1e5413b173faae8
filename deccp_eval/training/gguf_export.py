"""Write an edited model (abliterated, re-aligned) back to GGUF, for llama.cpp, Ollama and `hf:`.

Only for a model that was loaded from a GGUF file: its metadata (architecture, hyper-parameters,
tokenizer, chat template) is copied from that file and every tensor is taken from the edited
model, renamed and laid out the way transformers' GGUF loader undoes it (llama's q/k permutation),
then stored as F32, F16 or Q8_0 (norms and other 1-D tensors stay F32, as llama.cpp keeps them).
Converting a safetensors folder to GGUF needs llama.cpp's converter (tokenizer conversion); that
is not done here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from deccp_eval.backends.torch_utils import gguf_parsed_once
from deccp_eval.base.errors import MissingDependency, UsageError

GGUF_TYPES = ("F32", "F16", "Q8_0")
GgufType = Literal["F32", "F16", "Q8_0"]
GGUF_NAME = "model.gguf"
# general.file_type values (llama.cpp's LLAMA_FTYPE): all F32, mostly F16, mostly Q8_0
_FILE_TYPE = {"F32": 0, "F16": 1, "Q8_0": 7}


def _require_gguf() -> Any:
    try:
        import gguf
    except ImportError:
        raise MissingDependency("gguf", "hf", "--export-gguf") from None
    return gguf


def _permute(w: Any, n_head: int) -> Any:
    """llama.cpp's q/k layout (its converter's `permute`); transformers' loader applies the inverse."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def export_gguf(model: Any, source: str | Path, out: str | Path, qtype: GgufType = "Q8_0") -> Path:
    """Write `model`'s weights as a GGUF at `out`, metadata copied from `source` (the GGUF it came from)."""
    gguf = _require_gguf()
    import numpy as np
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, TensorProcessor, get_gguf_hf_weights_map

    if qtype not in GGUF_TYPES:
        raise UsageError(f"--export-gguf {qtype}: use one of {', '.join(GGUF_TYPES)}")
    reader = gguf.GGUFReader(str(source))
    arch = str(reader.fields["general.architecture"].contents())
    cfg = model.config
    processor = TENSOR_PROCESSORS.get(arch, TensorProcessor)(config=cfg.to_dict())
    with gguf_parsed_once():  # one name map, not one per submodule
        to_hf = get_gguf_hf_weights_map(model, processor)
    state = model.state_dict()
    target = getattr(gguf.GGMLQuantizationType, qtype)
    out = Path(out)
    tmp = out.with_name(f"{out.name}.part")
    writer = gguf.GGUFWriter(str(tmp), arch=arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in ("general.architecture", "general.file_type"):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    writer.add_uint32("general.file_type", _FILE_TYPE[qtype])
    for tensor in reader.tensors:
        hf_name = to_hf.get(tensor.name)
        if hf_name is None or hf_name not in state:
            raise UsageError(f"--export-gguf: no weight of the model matches {tensor.name} in {source}")
        w = state[hf_name].detach().float().cpu().numpy()
        if arch == "llama" and ".attn_q." in tensor.name:
            w = _permute(w, cfg.num_attention_heads)
        elif arch == "llama" and ".attn_k." in tensor.name:
            w = _permute(w, cfg.num_key_value_heads)
        if w.ndim < 2 or qtype == "F32":
            writer.add_tensor(tensor.name, np.ascontiguousarray(w, dtype=np.float32))
        elif qtype == "F16":
            writer.add_tensor(tensor.name, np.ascontiguousarray(w, dtype=np.float16))
        else:
            data = gguf.quants.quantize(np.ascontiguousarray(w, dtype=np.float32), target)
            writer.add_tensor(tensor.name, data, raw_dtype=target)
    names = {t.name for t in reader.tensors}
    lm_head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    if "output.weight" not in names and lm_head is not None and lm_head.weight is not embed.weight:
        raise UsageError(
            "--export-gguf: the edit untied the output embeddings from the input ones (--embeddings), "
            f"which {source} shares: export without --embeddings, or use the safetensors folder"
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)
    return out
