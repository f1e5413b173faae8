"""The base layer: what every other layer may use (the data model, errors, reading files and text,
statistics, the plugin manager). It imports nothing else of deccp_eval."""
