"""A problem found in a bundle: which file, which element, which rule, and what to do."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import InvalidProcess


@dataclass(frozen=True, order=True)
class Problem:
    file: str | None
    element: str | None
    rule: str
    message: str

    def line(self) -> str:
        """One line for people: `processes/case_review.bpmn: Gateway_1: rule: message`."""
        return f"{self.file or '(bundle)'}: {self.element or '-'}: {self.rule}: {self.message}"

    def as_dict(self) -> dict:
        return asdict(self)


class BundleInvalid(InvalidProcess):
    """Validation found problems; nothing was published (CLI exit status 2)."""

    def __init__(self, problems: list[Problem]):
        super().__init__([p.as_dict() for p in problems])
        self.problems = problems
