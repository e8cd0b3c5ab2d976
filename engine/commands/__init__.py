"""Feature command groups of the `casereview` CLI (each module exports COMMANDS; see engine.cli)."""
