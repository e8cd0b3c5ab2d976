"""The event log for process-mining tools: one trace per case received in the period, one event
per command on it (engine/reports/history.py), as CSV with XES column names or as XES XML
(IEEE 1849-2016) with the Concept, Time, Organizational and Lifecycle extensions.

Both are written as a stream of chunks, so a large export never sits whole in memory.
"""
from __future__ import annotations

import csv
import io
from typing import IO, Iterable, Iterator

from lxml import etree

from .history import ProcessEvent

CSV_COLUMNS = ("case:concept:name", "concept:name", "time:timestamp", "org:resource", "lifecycle:transition")
XES_NAMESPACE = "http://www.xes-standard.org/"
EXTENSIONS = (  # name, prefix, uri
    ("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
    ("Time", "time", "http://www.xes-standard.org/time.xesext"),
    ("Organizational", "org", "http://www.xes-standard.org/org.xesext"),
    ("Lifecycle", "lifecycle", "http://www.xes-standard.org/lifecycle.xesext"),
)
TRANSITION = "complete"  # the audit trail records each step when it is done


def timestamp(event: ProcessEvent) -> str:
    """xs:dateTime with milliseconds and the UTC offset, as XES tools expect."""
    return event.at.isoformat(timespec="milliseconds")


def csv_chunks(events: Iterable[ProcessEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for count, event in enumerate(events, 1):
        writer.writerow((event.reference, event.activity, timestamp(event), event.actor, TRANSITION))
        if count % 1000 == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


class _Chunks:
    """A file-like sink that hands back what has been written since it was last asked."""

    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(bytes(data))

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _string(key: str, value: str) -> etree._Element:
    return etree.Element("string", key=key, value=value)


def _header(xf, log_name: str) -> None:
    for name, prefix, uri in EXTENSIONS:
        xf.write(etree.Element("extension", name=name, prefix=prefix, uri=uri))
    trace_globals = etree.Element("global", scope="trace")
    trace_globals.append(_string("concept:name", "__INVALID__"))
    event_globals = etree.Element("global", scope="event")
    event_globals.append(_string("concept:name", "__INVALID__"))
    event_globals.append(etree.Element("date", key="time:timestamp", value="1970-01-01T00:00:00.000+00:00"))
    event_globals.append(_string("lifecycle:transition", TRANSITION))
    for element in (trace_globals, event_globals):
        xf.write(element)
    xf.write(etree.Element("classifier", name="Activity", keys="concept:name"))
    xf.write(etree.Element("classifier", name="Activity and transition", keys="concept:name lifecycle:transition"))
    xf.write(_string("concept:name", log_name))


def _event(event: ProcessEvent) -> etree._Element:
    element = etree.Element("event")
    element.append(_string("concept:name", event.activity))
    element.append(_string("org:resource", event.actor))
    element.append(etree.Element("date", key="time:timestamp", value=timestamp(event)))
    element.append(_string("lifecycle:transition", TRANSITION))
    return element


def xes_chunks(events: Iterable[ProcessEvent], log_name: str) -> Iterator[bytes]:
    """The XES document, one chunk per trace (events must come grouped by case, in order)."""
    sink = _Chunks()
    with etree.xmlfile(sink, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("log", {"xes.version": "1849-2016", "xes.features": "nested-attributes"},
                        nsmap={None: XES_NAMESPACE}):
            _header(xf, log_name)
            trace, case = None, None
            for event in events:
                if event.reference != case:
                    if trace is not None:
                        xf.write(trace)
                        yield sink.take()
                    case, trace = event.reference, etree.Element("trace")
                    trace.append(_string("concept:name", event.reference))
                trace.append(_event(event))
            if trace is not None:
                xf.write(trace)
    yield sink.take()


def write_csv(events: Iterable[ProcessEvent], out: IO[str]) -> None:
    for chunk in csv_chunks(events):
        out.write(chunk)


def write_xes(events: Iterable[ProcessEvent], out: IO[bytes], log_name: str) -> None:
    for chunk in xes_chunks(events, log_name):
        out.write(chunk)
