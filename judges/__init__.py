"""Built-in judges, one module each (imported as deccp_eval.judges.*)."""
