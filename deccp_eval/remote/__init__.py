"""What remote API backends share: faults.py (classified failures), limit.py (requests in flight),
engine.py (RemoteBackend: retries, accounting, the sync-to-async bridge). Plugins import from here."""

from deccp_eval.remote.engine import (BACKOFF_ENV, NO_KEY, NO_KEY_PLACEHOLDER, RETRY_AFTER_CAP_S, Completion,
                                      RemoteBackend, RetryPolicy)
from deccp_eval.remote.faults import (CONTENT_FILTER_MARKERS, Fault, RemoteError, parse_retry_after, scrub,
                                      server_message, stainless_fault, status_phrase)
from deccp_eval.remote.limit import AdaptiveLimit

__all__ = ["AdaptiveLimit", "BACKOFF_ENV", "CONTENT_FILTER_MARKERS", "Completion", "Fault", "NO_KEY",
           "NO_KEY_PLACEHOLDER", "RETRY_AFTER_CAP_S", "RemoteBackend", "RemoteError", "RetryPolicy",
           "parse_retry_after", "scrub", "server_message", "stainless_fault", "status_phrase"]
