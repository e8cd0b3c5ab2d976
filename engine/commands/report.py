"""`casereview report`: the statutory figures and the event log export."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import click

from .. import audit
from ..cli import _emit, _service, handles_errors
from ..errors import CaseReviewError, InvalidData
from ..reports import (cohort_history, last_complete_financial_year, last_twelve_months, parse_period,
                       statutory_figures)
from ..reports.eventlog import csv_chunks, xes_chunks
from ..reports.periods import Period

OPTION_OF = {"from": "--from", "to": "--to"}


def _period(start: str | None, end: str | None, default: Period) -> Period:
    try:
        return parse_period(start, end, default)
    except InvalidData as error:  # name the options the user typed, not the web form's fields
        raise InvalidData([{**e, "field": OPTION_OF.get(e["field"], e["field"])} for e in error.errors],
                          "The reporting period is not valid") from None


@click.group()
def report() -> None:
    """Reports: the statutory figures and the event log."""


@report.command()
@click.option("--from", "start", help="first day, YYYY-MM-DD (default: the last complete financial year)")
@click.option("--to", "end", help="last day, YYYY-MM-DD (included)")
@click.option("--json", "as_json", is_flag=True, help="JSON output (the default)")
@handles_errors
def statutory(start: str | None, end: str | None, as_json: bool) -> None:
    """Applications received, times the threshold was not met, reviews carried out and reviews
    resulting in recommendations, in a period (both days included)."""
    service = _service()
    period = _period(start, end, last_complete_financial_year(service.now().date()))
    with service.sessions() as db:
        figures = statutory_figures(db, period)
    click.echo(f"Statutory figures for {period.words}", err=True)
    _emit(figures.as_dict())


class _Counted:
    """Counts the cases and events of the export as they stream past."""

    def __init__(self, events):
        self.events, self.cases, self._source, self._last = 0, 0, events, None

    def __iter__(self):
        for event in self._source:
            self.events += 1
            if event.reference != self._last:
                self.cases, self._last = self.cases + 1, event.reference
            yield event


@contextmanager
def _output(out: str, binary: bool):
    if out == "-":
        yield sys.stdout.buffer if binary else sys.stdout
        return
    try:
        handle = open(out, "wb") if binary else open(out, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise CaseReviewError(f"cannot write {out}: {exc.strerror}") from None
    with handle:
        yield handle


@report.command()
@click.option("--out", required=True, help="file to write; - for stdout")
@click.option("--format", "kind", type=click.Choice(["xes", "csv"]), default=None,
              help="xes (XML) or csv with XES column names (default: from the file name, else xes)")
@click.option("--from", "start", help="first day of receipt, YYYY-MM-DD (default: the last twelve months)")
@click.option("--to", "end", help="last day of receipt, YYYY-MM-DD (included)")
@handles_errors
def events(out: str, kind: str | None, start: str | None, end: str | None) -> None:
    """The event log of the cases received in a period, for process-mining tools: one trace per
    case, one event per recorded step."""
    kind = kind or ("csv" if Path(out).suffix.lower() == ".csv" else "xes")
    service = _service()
    period = _period(start, end, last_twelve_months(service.now().date()))
    with service.sessions() as db, _output(out, binary=kind == "xes") as handle:
        counted = _Counted(cohort_history(db, period))
        if kind == "csv":
            for chunk in csv_chunks(counted):
                handle.write(chunk)
        else:
            for chunk in xes_chunks(counted, f"ASB case reviews received {period.words}"):
                handle.write(chunk)
    with service.transaction() as db:
        audit.record(db, at=service.now(), actor="cli", event="event_log_exported",
                     detail={"format": kind, **period.query(), "cases": counted.cases, "events": counted.events})
    click.echo(f"{counted.cases} cases, {counted.events} events written to {out}", err=True)
    if out != "-":
        _emit({"format": kind, "out": out, **period.query(), "cases": counted.cases, "events": counted.events})


COMMANDS = [report]
