"""What remote API backends share: faults.py (classified failures), limit.py (requests in flight),
engine.py (RemoteBackend: retries, accounting, the sync-to-async bridge), provider.py (what a plugin
returns and, for batches, implements), batch.py (the batch driver). Plugins import from here."""

from deccp_eval.backends.remote.engine import (
    BACKOFF_ENV,
    NO_KEY,
    NO_KEY_PLACEHOLDER,
    RETRY_AFTER_CAP_S,
    RemoteBackend,
    RetryPolicy,
)
from deccp_eval.backends.remote.faults import (
    CONTENT_FILTER_MARKERS,
    Fault,
    RemoteError,
    parse_retry_after,
    scrub,
    server_message,
    stainless_fault,
    status_phrase,
)
from deccp_eval.backends.remote.limit import AdaptiveLimit
from deccp_eval.backends.remote.provider import BatchAPI, BatchInfo, Completion

__all__ = [
    "AdaptiveLimit",
    "BACKOFF_ENV",
    "BatchAPI",
    "BatchInfo",
    "CONTENT_FILTER_MARKERS",
    "Completion",
    "Fault",
    "NO_KEY",
    "NO_KEY_PLACEHOLDER",
    "RETRY_AFTER_CAP_S",
    "RemoteBackend",
    "RemoteError",
    "RetryPolicy",
    "parse_retry_after",
    "scrub",
    "server_message",
    "stainless_fault",
    "status_phrase",
]
