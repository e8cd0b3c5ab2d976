"""Who may do what. Every authorisation question is asked here, nowhere else."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import NotAllowed

# Versions published before the victim had a lane put the victim's consent task, with this form,
# in the applicant's lane. It is still the victim's answer: only their consent link may give it.
LEGACY_CONSENT_FORM = "victim_consent.json"

if TYPE_CHECKING:
    from .models import HumanTask
    from .service import Actor

STAFF_ROLES = ("coordinator", "partner", "chair", "reviewer", "owner", "admin")


# Lanes answered by people without accounts, each through their own private link only: the
# applicant's tracking link (and `--applicant`), the victim's consent link. Neither may answer
# the other's tasks, and no staff account may answer either.
PERSON_ROLES = ("applicant", "victim")


def may_complete(actor: "Actor", task: "HumanTask") -> bool:
    if task.role == "applicant" and task.form == LEGACY_CONSENT_FORM:
        return actor.is_victim  # an old version's consent task, drawn in the applicant's lane
    if task.role == "applicant":
        return actor.is_applicant
    if task.role == "victim":
        return actor.is_victim
    if actor.is_applicant or actor.is_victim:
        return False
    user = actor.user
    if user is None or not user.active or user.role != task.role:
        return False
    if task.role == "partner":
        return user.agency is not None and user.agency == task.agency
    return True


def require_may_complete(actor: "Actor", task: "HumanTask") -> None:
    if may_complete(actor, task):
        return
    if task.role == "partner":
        raise NotAllowed(f"task {task.id} is for a {task.agency} officer; {actor.name} may not complete it")
    if task.role == "victim" or (task.role == "applicant" and task.form == LEGACY_CONSENT_FORM):
        raise NotAllowed(f"task {task.id} is the victim's own answer, given only through the private link in "
                         f"the letter to the victim; {actor.name} may not complete it")
    raise NotAllowed(f"task {task.id} is for the {task.role}; {actor.name} may not complete it")


# Roles that work across every case; partners see only cases their agency is involved in.
CASE_WIDE_ROLES = ("coordinator", "chair", "reviewer")


def may_view_case(user, case) -> bool:
    if user is None or not getattr(user, "active", False):
        return False
    if user.role in CASE_WIDE_ROLES:
        return True
    return user.role == "partner" and user.agency in (case.agencies or [])


def sees_personal_details(user) -> bool:
    """Applicant contact details are for the coordinating roles, not partner officers."""
    return user.role in CASE_WIDE_ROLES


def may_add_documents(actor: "Actor", ready_tasks) -> bool:
    """Documents are added for work on the case: by whoever may complete one of its ready tasks."""
    return any(may_complete(actor, task) for task in ready_tasks)


def may_see_document(user, document) -> bool:
    """On a case the user may view: the case-wide roles see every document; a partner officer
    only those an officer of their own agency uploaded (applicants' files are personal)."""
    if user.role in CASE_WIDE_ROLES:
        return True
    return user.role == "partner" and document.agency is not None and document.agency == user.agency


def withheld_task_data(user, case) -> set[str]:
    """What a task page may not show this user beside a form (the first part of a data path):
    for partner officers, the application's sections about people (who applied, the victim),
    so no declaration can put the applicant's contact details in front of them."""
    if user is None or sees_personal_details(user):
        return set()
    return {key for key, value in (case.application or {}).items() if isinstance(value, dict)}


def only_agency(user) -> str | None:
    """The one agency whose entries (histories, actions) this user may see; None: all of them."""
    if user is None or sees_personal_details(user):
        return None
    return user.agency or ""


# History rows about the applicant's letters and private links: the letters are not the partners' to
# read, so neither is who downloaded or re-sent them.
PERSONAL_HISTORY_EVENTS = ("letter_downloaded", "applicant_link_sent")


def visible_history(user, history: list[dict]) -> list[dict]:
    """The case history this user may read: everything for the coordinating roles; for partner
    officers, without page views and without the events about letters to the applicant."""
    if sees_personal_details(user):
        return history
    return [h for h in history if h["event"] not in ("case_viewed", *PERSONAL_HISTORY_EVENTS)]
