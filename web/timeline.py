"""A case's history as the MOJ timeline shows it: plain words for each recorded event.

The audit trail stores event names (`task_completed`, `timer_fired`…); people read sentences.
Every page that shows a case's history (the case page, the escalation decision) goes through
`timeline_entries`, so the same event reads the same everywhere."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

EVENT_WORDS = {
    "application_received": "Application received",
    "task_completed": "Task completed",
    "timer_fired": "Deadline or reminder reached",
    "withdrawal_requested": "Withdrawal asked for",
    "escalation_requested": "Escalation asked for",
    "task_reassigned": "Task given to someone else",
    "case_migrated": "Moved to a new version of the process",
    "document_uploaded": "Document added",
    "document_downloaded": "Document downloaded",
    "letter_downloaded": "Letter downloaded",
    "applicant_link_sent": "New private link sent to the applicant",
    "case_viewed": "Case viewed",
    "case_anonymised": "Personal details removed (retention period over)",
    "case_erased": "Personal details erased at the person's request",
}


def event_words(event: str) -> str:
    """Plain words for an audit event; an unknown one is its name as a sentence."""
    return EVENT_WORDS.get(event) or event.replace("_", " ").capitalize()


def timeline_entries(history: Iterable[Mapping[str, Any]], stage_words: Mapping[str, str]) -> list[dict]:
    """Newest first: what happened, who did it, when, and the stage it moved the case to."""
    entries = []
    for event in history:
        title = event_words(event["event"])
        if event.get("title"):
            title = f"{title}: {event['title']}"
        moved = event.get("stage_before") != event.get("stage_after") and event.get("stage_after")
        entries.append({
            "title": title,
            "actor": _actor_words(event.get("actor") or ""),
            "at": event["at"],
            "description": f"Stage now: {stage_words.get(moved, moved)}" if moved else "",
        })
    entries.reverse()
    return entries


def _actor_words(actor: str) -> str:
    return {"system": "the system (a deadline or reminder)", "applicant": "the applicant",
            "victim": "the victim"}.get(actor, actor)
