"""Linked cases: other cases at the same address or postcode, or naming the same people.

Shown to the coordinator when an application arrives, so repeat victims, neighbours reporting
the same problem and people who appear in several cases are seen together. The application
form names the applicant and the victim only (there is no field for the people complained
about), so those are the names compared, each against both roles of the other cases.
Anonymised cases never match: their names are gone and their postcodes cut to the outward code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from .anonymise import MARK, is_full_postcode
from .models import Case

LIMIT = 20


@dataclass
class LinkedCase:
    reference: str
    status: str
    stage: str
    received_on: str
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"reference": self.reference, "status": self.status, "stage": self.stage,
                "received_on": self.received_on, "reasons": self.reasons}


def _name(value: str | None) -> str | None:
    text = " ".join((value or "").split()).lower()
    return text if text and value != MARK else None


def _address(value: str | None) -> str | None:
    text = re.sub(r"[^a-z0-9]+", " ", (value or "").lower()).strip()
    return text or None


def _postcode_forms(postcode: str | None) -> list[str]:
    """The ways the same postcode may be stored: `AB12CD` and `AB1 2CD`."""
    if not is_full_postcode(postcode):
        return []
    compact = re.sub(r"\s+", "", postcode).upper()
    return [compact, f"{compact[:-3]} {compact[-3:]}"]


def people(case: Case) -> dict[str, str]:
    """Normalised name → role in the case. Someone applying for themselves is the victim."""
    found: dict[str, str] = {}
    victim = _name(case.victim_name)
    applicant = _name(case.applicant_name)
    if applicant:
        found[applicant] = "victim" if case.route == "victim" else "applicant"
    if victim:
        found[victim] = "victim"
    return found


def linked_cases(db: Session, case: Case) -> list[LinkedCase]:
    """Other cases sharing the address, postcode, applicant email or a person's name with
    `case`, newest first, each with why it is linked. Each test is an indexed lookup
    (the postcode index; lower() of names and email, migration 0004)."""
    names = people(case)
    email = (case.applicant_email or "").strip().lower() or None
    postcodes = _postcode_forms(case.postcode)
    conditions = []
    if names:
        conditions += [func.lower(Case.applicant_name).in_(list(names)), func.lower(Case.victim_name).in_(list(names))]
    if email:
        conditions.append(func.lower(Case.applicant_email) == email)
    if postcodes:
        conditions.append(Case.postcode.in_(postcodes))
    if not conditions:
        return []
    found = db.scalars(select(Case).where(Case.id != case.id, or_(*conditions))
                       .order_by(Case.received_on.desc(), Case.reference.desc()).limit(LIMIT))
    address = _address(_applicant(case).get("address"))
    linked = [_explain(other, names, email, postcodes, address) for other in found]
    return [item for item in linked if item.reasons]


def _applicant(case: Case) -> dict:
    return (case.application or {}).get("applicant") or {}


def _explain(other: Case, names: dict[str, str], email: str | None, postcodes: list[str],
             address: str | None) -> LinkedCase:
    linked = LinkedCase(other.reference, other.status, other.stage, other.received_on.isoformat())
    for name, other_role in people(other).items():
        role = names.get(name)
        if role == other_role:
            linked.reasons.append(f"the same {role}'s name")
        elif role:
            linked.reasons.append(f"the {role} here is named as the {other_role} there")
    if email and (other.applicant_email or "").strip().lower() == email:
        linked.reasons.append("the same applicant email address")
    if address and address == _address(_applicant(other).get("address")):
        linked.reasons.append("the same postal address")
    elif postcodes and other.postcode in postcodes:
        linked.reasons.append("the same postcode")
    return linked
