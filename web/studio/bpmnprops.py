"""A diagram's task and timer properties, read and rewritten without the modeler.

Process owners change who does a user task, its form, its agency rule and its due date, and
how long a timer waits, on plain server-rendered pages. This module reads those properties
from the BPMN XML (parsed by engine/safexml, so no DTD or entity ever loads) and writes them
back with lxml, touching only the elements it changes: the rest of the file, its layout and
its extension elements, stay byte for byte as they were (apart from lxml's quoting).

The expressions written are the forms the shipped diagrams use and the engine understands:
- due date (`dueDate` property): `add_working_days(<from>, <n>)`;
- timer in working days: `<bpmn:timeDate>working_days_from_now(<n>)</bpmn:timeDate>`;
- timer in calendar days: `<bpmn:timeDuration>"P<n>D"</bpmn:timeDuration>` (an ISO 8601
  duration; SpiffWorkflow evaluates timer text as an expression, so the literal is quoted).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from engine.safexml import parse_xml
from engine.studio.bpmnmodel import BPMNDI, bpmn, read_diagram, spiff
from engine.studio.duerules import DueRule, read_due_rule

DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
FORM_PROPERTY = "formJsonSchemaFilename"
MAX_DAYS = 365
# lxml writes `<a/>`; text and attribute values never hold a bare ">" (it is escaped), so this only
# ever meets the end of an empty element.
_SELF_CLOSING = re.compile(r"(?<=\S)/>")

# Words for the dates a due date can count from; anything else shows as the expression itself.
DUE_FROM_WORDS = {
    "today()": "the day the task is ready",
    "received_on": "the day the application was received",
    "history_requested_on": "the day the agencies were asked for their history",
    "decided_on": "the day the threshold was decided",
    "panel_requested_on": "the day a panel was asked for",
    "panel_date": "the day of the panel",
    "follow_up_started_on": "the day the follow-up started",
    "escalation_requested_on": "the day the escalation was asked for",
    'action["due"]': "the action's due date",
    'action["updated_on"]': "the day the action was last updated",
}
# Words for agency rules of partner tasks (a fixed agency is written as its quoted code).
AGENCY_WORDS = {
    "item": "The agency of this copy of the task (one copy for each agency)",
    'action["agency"]': "The agency that owns the action",
}


class PropertyError(ValueError):
    """An element or value the page asked for does not fit the diagram."""


@dataclass(frozen=True)
class Period:
    days: int
    unit: str  # "working" or "calendar"

    def words(self) -> str:
        kind = "working day" if self.unit == "working" else "calendar day"
        return f"{self.days} {kind}{'' if self.days == 1 else 's'}"


@dataclass
class UserTask:
    id: str
    name: str
    process: str
    lane: str | None
    form: str | None
    due_date: str | None
    agency: str | None
    multi_instance: bool

    @property
    def due_rule(self) -> DueRule | None:
        return read_due_rule(self.due_date)


@dataclass
class TimerEvent:
    id: str
    name: str
    process: str
    kind: str  # timeDate, timeDuration, timeCycle
    expression: str
    attached_to: str | None  # the task a boundary timer sits on

    @property
    def period(self) -> Period | None:
        return read_period(self.kind, self.expression)


def read_period(kind: str, expression: str) -> Period | None:
    """The period a timer waits, when it is written in one of the two simple forms."""
    text = (expression or "").strip()
    if kind == "timeDate":
        match = re.fullmatch(r"working_days_from_now\(\s*(\d+)\s*\)", text)
        return Period(int(match.group(1)), "working") if match else None
    if kind == "timeDuration":
        match = re.fullmatch(r"""(["'])P(\d+)D\1""", text)
        return Period(int(match.group(2)), "calendar") if match else None
    return None


def period_expression(period: Period) -> tuple[str, str]:
    """(element local name, text) for a timer waiting `period`."""
    if period.unit == "working":
        return "timeDate", f"working_days_from_now({period.days})"
    return "timeDuration", f'"P{period.days}D"'


def fixed_agency(expression: str | None) -> str | None:
    """The agency code of a rule naming one agency (`"police"`), else None."""
    match = re.fullmatch(r"""(["'])([a-z0-9_]+)\1""", (expression or "").strip())
    return match.group(2) if match else None


def retitle_period(name: str, before: Period | None, after: Period) -> str:
    """A timer's label that states its period ("Reminder after 5 working days") follows the change."""
    if before is None:
        return name
    pattern = re.compile(r"\b(\d+)\s+(?:(?:working|calendar)\s+)?days?\b")
    found = list(pattern.finditer(name))
    if len(found) != 1 or int(found[0].group(1)) != before.days:
        return name
    return name[:found[0].start()] + after.words() + name[found[0].end():]


class DiagramProperties:
    """One BPMN file of a draft: its user tasks, timers and lanes, and the edits the pages make."""

    def __init__(self, text: str, file: str):
        self.file = file
        self.root = parse_xml(text, file)
        self._diagram = read_diagram(self.root, file)

    # ----- reading ------------------------------------------------------------------------
    def user_tasks(self) -> list[UserTask]:
        tasks = []
        for node in self._diagram.nodes.values():
            if node.kind != "userTask":
                continue
            props = node.properties()
            tasks.append(UserTask(
                id=node.id, name=node.name or node.id, process=node.process, lane=node.lane,
                form=props.get(FORM_PROPERTY) or None, due_date=props.get("dueDate") or None,
                agency=props.get("agency") or None,
                multi_instance=node.element.find(bpmn("multiInstanceLoopCharacteristics")) is not None))
        return tasks

    def timers(self) -> list[TimerEvent]:
        found = []
        for node in self._diagram.nodes.values():
            timer = node.timer()
            if timer is None:
                continue
            host = self._diagram.nodes.get(node.attached_to or "")
            found.append(TimerEvent(id=node.id, name=node.name or node.id, process=node.process, kind=timer[0],
                                    expression=timer[1], attached_to=(host.name or host.id) if host else None))
        return found

    def user_task(self, element_id: str) -> UserTask:
        for task in self.user_tasks():
            if task.id == element_id:
                return task
        raise PropertyError(f"{self.file} has no user task {element_id!r}")

    def timer(self, element_id: str) -> TimerEvent:
        for timer in self.timers():
            if timer.id == element_id:
                return timer
        raise PropertyError(f"{self.file} has no timer event {element_id!r}")

    def lane_names(self, process: str) -> list[str]:
        """The roles a task of `process` can move to: its lanes' names, in diagram order."""
        return list(dict.fromkeys(name for _id, name in self._lanes(process) if name))

    def text(self) -> str:
        """The document written back in the shipped files' style (`<a />`, double-quoted
        declaration), so a draft's changes read as changes and not as reformatting."""
        body = etree.tostring(self.root.getroottree(), encoding="unicode")
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + _SELF_CLOSING.sub(" />", body) + "\n"

    # ----- writing ------------------------------------------------------------------------
    def set_property(self, element_id: str, name: str, value: str | None) -> None:
        """Set (or, with None, remove) a `spiffworkflow:property` of an element."""
        element = self._element(element_id)
        extensions = element.find(bpmn("extensionElements"))
        holder = extensions.find(spiff("properties")) if extensions is not None else None
        existing = None
        if holder is not None:
            existing = next((p for p in holder.findall(spiff("property")) if p.get("name") == name), None)
        if value is None:
            if existing is not None:
                _remove(existing)
            return
        if existing is not None:
            existing.set("value", value)
            return
        if extensions is None:
            extensions = etree.Element(bpmn("extensionElements"))
            documentation = element.find(bpmn("documentation"))
            element.insert(element.index(documentation) + 1 if documentation is not None else 0, extensions)
        if holder is None:
            holder = etree.SubElement(extensions, spiff("properties"))
        _append(holder, etree.Element(spiff("property"), name=name, value=value))

    def set_timer(self, element_id: str, period: Period) -> None:
        if not 1 <= period.days <= MAX_DAYS or period.unit not in ("working", "calendar"):
            raise PropertyError(f"a timer waits between 1 and {MAX_DAYS} days")
        element = self._element(element_id)
        definition = element.find(bpmn("timerEventDefinition"))
        if definition is None:
            raise PropertyError(f"{element_id} is not a timer event")
        before = self.timer(element_id).period
        kind, text = period_expression(period)
        current = next((c for c in definition if isinstance(c.tag, str)
                        and etree.QName(c).localname in ("timeDate", "timeDuration", "timeCycle")), None)
        if current is None:
            current = etree.SubElement(definition, bpmn(kind))
        current.tag = bpmn(kind)
        current.text = text
        if element.get("name"):
            element.set("name", retitle_period(element.get("name"), before, period))

    def move_to_lane(self, element_id: str, lane_name: str) -> None:
        """Put a task (and the events on its border) in the lane named `lane_name`, and move its
        shapes into that lane's band so the diagram shows what the process does."""
        node = self._diagram.nodes.get(element_id)
        if node is None:
            raise PropertyError(f"{self.file} has no element {element_id!r}")
        lanes = {name: lane_id for lane_id, name in self._lanes(node.process)}
        if lane_name not in lanes:
            raise PropertyError(f"the process {node.process} has no lane {lane_name!r}")
        if node.lane == lane_name:
            return
        moving = [element_id] + [n.id for n in self._diagram.nodes.values() if n.attached_to == element_id]
        source_lane = None
        for lane in self._lane_elements(node.process):
            for ref in lane.findall(bpmn("flowNodeRef")):
                if (ref.text or "").strip() in moving:
                    if (ref.text or "").strip() == element_id:
                        source_lane = lane.get("id")
                    _remove(ref)
        target = next(lane for lane in self._lane_elements(node.process) if lane.get("id") == lanes[lane_name])
        for moved in moving:
            ref = etree.Element(bpmn("flowNodeRef"))
            ref.text = moved
            refs = target.findall(bpmn("flowNodeRef"))
            if refs:
                refs[-1].addnext(ref)
                ref.tail, refs[-1].tail = refs[-1].tail, target.text  # the neighbours' indentation
            else:
                _append(target, ref)
        self._move_shapes(moving, source_lane, lanes[lane_name])
        self._diagram = read_diagram(self.root, self.file)

    # ----- internals ----------------------------------------------------------------------
    def _element(self, element_id: str):
        node = self._diagram.nodes.get(element_id)
        if node is None:
            raise PropertyError(f"{self.file} has no element {element_id!r}")
        return node.element

    def _process(self, process_id: str):
        return next((p for p in self.root.findall(bpmn("process")) if p.get("id") == process_id), None)

    def _lane_elements(self, process_id: str) -> list:
        process = self._process(process_id)
        return list(process.iter(bpmn("lane"))) if process is not None else []

    def _lanes(self, process_id: str) -> list[tuple[str, str]]:
        return [(lane.get("id", ""), lane.get("name", "")) for lane in self._lane_elements(process_id)]

    def _bounds(self, element_id: str):
        for shape in self.root.iter(f"{{{BPMNDI}}}BPMNShape"):
            if shape.get("bpmnElement") == element_id:
                return shape
        return None

    def _move_shapes(self, moving: list[str], source_lane: str | None, target_lane: str) -> None:
        task_shape, from_shape, to_shape = self._bounds(moving[0]), self._bounds(source_lane or ""), \
            self._bounds(target_lane)
        if task_shape is None or from_shape is None or to_shape is None:
            return  # not drawn with lanes: only the process changes
        task, lane_from, lane_to = (_box(s) for s in (task_shape, from_shape, to_shape))
        if None in (task, lane_from, lane_to):
            return
        wanted = lane_to["y"] + (task["y"] - lane_from["y"])
        wanted = max(lane_to["y"] + 10, min(wanted, lane_to["y"] + lane_to["height"] - task["height"] - 10))
        dy = wanted - task["y"]
        if not dy:
            return
        for element_id in moving:
            shape = self._bounds(element_id)
            if shape is not None:
                for bounds in shape.iter(f"{{{DC}}}Bounds"):
                    bounds.set("y", _number(float(bounds.get("y", "0")) + dy))
        for flow in self._diagram.flows.values():
            ends = [end for end, ref in (("source", flow.source), ("target", flow.target)) if ref in moving]
            if ends:
                self._shift_edge(flow.id, ends, dy)

    def _shift_edge(self, flow_id: str, ends: list[str], dy: float) -> None:
        edge = next((e for e in self.root.iter(f"{{{BPMNDI}}}BPMNEdge") if e.get("bpmnElement") == flow_id), None)
        if edge is None:
            return
        points = edge.findall(f"{{{DI}}}waypoint")
        if len(points) < 2:
            return
        if len(ends) == 2:  # both ends move: the whole line moves with them
            for point in points:
                point.set("y", _number(float(point.get("y")) + dy))
            return
        end_index = 0 if ends[0] == "source" else len(points) - 1
        neighbour_index = 1 if end_index == 0 else len(points) - 2
        end, neighbour = points[end_index], points[neighbour_index]
        old_y = float(end.get("y"))
        end.set("y", _number(old_y + dy))
        if len(points) > 2 and float(neighbour.get("y")) == old_y:
            neighbour.set("y", _number(old_y + dy))  # a level segment into the shape stays level
        elif len(points) == 2 and float(neighbour.get("x")) != float(end.get("x")):
            # A straight line between shapes now in different bands: give it a right-angled bend.
            middle_x = _number((float(end.get("x")) + float(neighbour.get("x"))) / 2)
            first, last = points
            bend_one = etree.Element(f"{{{DI}}}waypoint", x=middle_x, y=first.get("y"))
            bend_two = etree.Element(f"{{{DI}}}waypoint", x=middle_x, y=last.get("y"))
            bend_one.tail = bend_two.tail = first.tail
            first.addnext(bend_one)
            bend_one.addnext(bend_two)


def _append(parent, child) -> None:
    """Add an element after the last child, indented like it."""
    children = list(parent)
    if children:
        children[-1].addnext(child)
        child.tail, children[-1].tail = children[-1].tail, parent.text
    else:
        parent.append(child)


def _remove(child) -> None:
    """Remove an element, leaving the indentation of what follows as it was."""
    parent, previous = child.getparent(), child.getprevious()
    if child.getnext() is None:
        if previous is not None:
            previous.tail = child.tail
        else:
            parent.text = child.tail
    parent.remove(child)


def _box(shape) -> dict | None:
    bounds = shape.find(f"{{{DC}}}Bounds")
    if bounds is None:
        return None
    try:
        return {k: float(bounds.get(k, "0")) for k in ("x", "y", "width", "height")}
    except ValueError:
        return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def processes_in(files: dict[str, str]) -> list[dict]:
    """Each BPMN process of a bundle: id, name and file (files that do not parse are left out)."""
    found = []
    for name in sorted(files):
        if not name.endswith(".bpmn"):
            continue
        try:
            root = parse_xml(files[name], name)
        except ValueError:
            continue
        for process in root.findall(bpmn("process")):
            found.append({"id": process.get("id", ""), "name": process.get("name") or process.get("id", ""),
                          "file": name})
    return found
