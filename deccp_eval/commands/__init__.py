"""CLI commands that live in their own modules (loaded lazily by deccp_eval.cli.LAZY_COMMANDS)."""
