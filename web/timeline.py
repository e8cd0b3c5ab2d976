"""A case's history as the MOJ timeline shows it: plain words for each recorded event.

The audit trail stores event names (`task_completed`, `timer_fired`…); people read sentences.
Every page that shows a case's history (the case page, the escalation decision) goes through
`timeline_entries`, so the same event reads the same everywhere."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

EVENT_WORDS = {
    # A case's own history
    "application_received": "Application received",
    "task_completed": "Task done",
    "timer_fired": "A deadline or reminder came round",
    "withdrawal_requested": "The applicant withdrew the case",
    "escalation_requested": "The applicant asked for an escalation",
    "task_reassigned": "Task given to someone else",
    "case_migrated": "Moved to a new version of the process",
    "document_uploaded": "Document added",
    "document_downloaded": "Document downloaded",
    "letter_downloaded": "Letter downloaded as a PDF",
    "applicant_link_sent": "New private link sent to the applicant",
    "case_viewed": "Case opened",
    "case_anonymised": "Personal details removed (retention period over)",
    "case_erased": "Personal details erased at the person's request",
    "subject_access_exported": "Copy of personal data given to the person it is about",
    # The service as a whole (the audit trail shows these too)
    "subject_access_search": "Searched for a person's cases (subject access)",
    "retention_run": "Closed cases past the retention period anonymised",
    "process_published": "New version of the process published",
    "draft_started": "Draft of the process started",
    "draft_file_saved": "File of a process draft saved",
    "draft_file_deleted": "File of a process draft deleted",
    "user_created": "Account created",
    "user_deactivated": "Account switched off",
    "user_reactivated": "Account switched back on",
    "agency_added": "Agency added",
    "two_factor_enabled": "Two-step sign-in set up",
    "api_token_created": "API key created",
    "api_token_revoked": "API key withdrawn",
    "audit_trail_downloaded": "Audit trail downloaded",
    "event_log_exported": "Event log downloaded",
}


def event_words(event: str) -> str:
    """Plain words for an audit event; an unknown one is its name as a sentence."""
    return EVENT_WORDS.get(event) or event.replace("_", " ").capitalize()


def timeline_entries(history: Iterable[Mapping[str, Any]], stage_words: Mapping[str, str],
                     people: Mapping[str, str] | None = None) -> list[dict]:
    """Newest first: what happened, who did it (by name when `people` maps their email to it), when,
    and the stage it moved the case to."""
    entries = []
    for event in history:
        title = event_words(event["event"])
        if event.get("title"):
            title = f"{title}: {event['title']}"
        moved = event.get("stage_before") != event.get("stage_after") and event.get("stage_after")
        entries.append({
            "title": title,
            "actor": _actor_words(event.get("actor") or "", people or {}),
            "at": event["at"],
            "description": f"Stage now: {stage_words.get(moved, moved)}" if moved else "",
        })
    entries.reverse()
    return entries


def _actor_words(actor: str, people: Mapping[str, str]) -> str:
    if actor in people:
        return f"{people[actor]} ({actor})"
    return {"system": "the system (a deadline or reminder)", "applicant": "the applicant",
            "victim": "the victim", "cli": "the command line"}.get(actor, actor)
