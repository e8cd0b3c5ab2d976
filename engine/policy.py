"""Who may do what. Every authorisation question is asked here, nowhere else."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import NotAllowed

if TYPE_CHECKING:
    from .models import HumanTask
    from .service import Actor

STAFF_ROLES = ("coordinator", "partner", "chair", "reviewer", "owner", "admin")


def may_complete(actor: "Actor", task: "HumanTask") -> bool:
    if task.role == "applicant":
        return actor.is_applicant
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
    raise NotAllowed(f"task {task.id} is for the {task.role}; {actor.name} may not complete it")
