"""The demos: the offline toy demo (`demo`), its re-alignment step and the real-models tables."""
