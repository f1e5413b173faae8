"""deccp-eval: measure how language models censor questions about China."""

import os as _os

__version__ = "0.1.0"

# torch's CPU build runs its thread pool on GNU OpenMP, whose idle threads spin between parallel
# regions. When the cores are shared (two test workers, a busy machine, Ray actors beside the
# driver) the spinning threads take the time slices the working ones need: a SmolLM2-135M decode step
# went from 0.14 s to 2.4 s of CPU time on 2 loaded cores. Idle threads that sleep cost microseconds
# on an idle machine. Read once when torch is first imported, so it is set here, before any import of
# torch; an explicit OMP_WAIT_POLICY (ACTIVE for a dedicated machine) wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
