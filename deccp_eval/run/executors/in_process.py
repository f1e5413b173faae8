"""The default executor: the plugin's backend, built and run in this process."""

from __future__ import annotations

from deccp_eval.backends.contract import Backend, BackendOptions, make_backend
from deccp_eval.run.executors.contract import Executor


class LocalExecutor(Executor):
    name = "local"

    def backend(self, spec: str, options: BackendOptions | None = None) -> Backend:
        return make_backend(spec, options)
