"""The data model, at the path third-party plugins import: a thin re-export of
`deccp_eval.base.schema`."""

from deccp_eval.base.schema import (Lang, Verdict, VERDICTS, CENSORED, DEFAULT_JUDGE, Accuracy, ACCURACIES, ParseStatus,
                                    Prompt, SamplingParams, OPTIONAL_PARAMS, canonical_hash, Request, TokenLogprob,
                                    Response, Judgment, judgment_key, text_hash, GoldReference)

__all__ = ["Lang", "Verdict", "VERDICTS", "CENSORED", "DEFAULT_JUDGE", "Accuracy", "ACCURACIES", "ParseStatus",
           "Prompt", "SamplingParams", "OPTIONAL_PARAMS", "canonical_hash", "Request", "TokenLogprob", "Response",
           "Judgment", "judgment_key", "text_hash", "GoldReference"]
