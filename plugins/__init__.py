"""Built-in model backends, one module each (imported as deccp_eval.plugins.*)."""
