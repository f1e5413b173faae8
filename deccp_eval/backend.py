"""The backend contract, at the path third-party plugins import: a thin re-export of
`deccp_eval.backends.contract`."""

from deccp_eval.backends.contract import (CAPABILITIES, JUDGE_OPTION_KEYS, Backend, BackendFactory, BackendOptions,
                                          BatchBackend, JudgeOptions, LoadOptions, OnResponse, OpenOptions, Options,
                                          backend_class, capabilities, group_by_params, knob, make_backend,
                                          option_names, options_error, parse_options, parse_spec)

__all__ = ["CAPABILITIES", "JUDGE_OPTION_KEYS", "Backend", "BackendFactory", "BackendOptions", "BatchBackend",
           "JudgeOptions", "LoadOptions", "OnResponse", "OpenOptions", "Options", "backend_class", "capabilities",
           "group_by_params", "knob", "make_backend", "option_names", "options_error", "parse_options", "parse_spec"]
