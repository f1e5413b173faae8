"""Abliteration: find the refusal direction, project it out of the weights, pick the strength with the harness.

Modules (each imports torch lazily, so `import deccp_eval.training.abliteration` stays light):

- `direction`: per-layer streaming means of the residual stream at the last prompt token, and the
  direction file (safetensors) that carries them.
- `apply`: the layer-weight kernel, weight orthogonalization (norm-preserving option, tied
  embeddings, biases) and the forward-hook mode used for fast trials.
- `score`: censorship share with a harness judge and first-token KL against the original model.
- `search`: the multi-objective Optuna study (stored in SQLite, resumable) and the Pareto front.
- `export`: `abliteration.json` (pydantic), the model card, the saved folder.
- `pipeline`: `abliterate(settings)`, what `deccp-eval abliterate` runs.
"""
