"""Errors a user can act on. Each carries a message fit to show and the CLI exit status."""
from __future__ import annotations


class CaseReviewError(Exception):
    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidData(CaseReviewError):
    """Submitted data does not match the form (or the application) schema."""

    exit_code = 2

    def __init__(self, errors: list[dict], message: str = "The data is not valid"):
        super().__init__(message + ": " + "; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class InvalidProcess(CaseReviewError):
    exit_code = 2

    def __init__(self, errors: list[dict]):
        super().__init__("The process bundle is not valid: " + "; ".join(
            f"{e.get('file') or '-'} {e.get('element') or '-'}: {e['message']}" for e in errors))
        self.errors = errors


class NotAllowed(CaseReviewError):
    exit_code = 3


class TaskNotReady(CaseReviewError):
    exit_code = 4


class NotFound(CaseReviewError):
    exit_code = 5


class Conflict(CaseReviewError):
    """The command does not fit the case's current state (e.g. escalate before any decision)."""

    exit_code = 6


class NotInitialised(CaseReviewError):
    """The database has no schema or no published process yet."""
