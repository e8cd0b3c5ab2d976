"""Case review workflow engine."""
