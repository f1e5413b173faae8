"""The backend contract, at the path third-party plugins import: a thin re-export of
`deccp_eval.backends.contract`."""

from deccp_eval.backends.contract import (OnResponse, BackendFactory, NON_OUTPUT_EXTRA, BackendOptions,
                                          JUDGE_OPTION_KEYS, Options, OpenOptions, knob, option_names, parse_options,
                                          options_error, parse_spec, Backend, BatchBackend, group_by_params,
                                          backend_class, make_backend)

__all__ = ["OnResponse", "BackendFactory", "NON_OUTPUT_EXTRA", "BackendOptions", "JUDGE_OPTION_KEYS", "Options",
           "OpenOptions", "knob", "option_names", "parse_options", "options_error", "parse_spec", "Backend",
           "BatchBackend", "group_by_params", "backend_class", "make_backend"]
