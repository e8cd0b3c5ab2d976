"""A plain view of a BPMN document (lxml tree → nodes, flows, lanes), shared by the lint
rules, the code checks and the diff. It reads the XML only, so it works on diagrams that
SpiffWorkflow would refuse to parse."""
from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
DMN_NAMESPACES = (
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
)

TASKS = frozenset({"task", "userTask", "scriptTask", "serviceTask", "sendTask", "receiveTask", "manualTask",
                   "businessRuleTask"})
SUB_PROCESSES = frozenset({"subProcess", "transaction", "adHocSubProcess"})
ACTIVITIES = TASKS | SUB_PROCESSES | {"callActivity"}
GATEWAYS = frozenset({"exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway",
                      "complexGateway"})
EVENTS = frozenset({"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"})
FLOW_NODES = ACTIVITIES | GATEWAYS | EVENTS
TIMER_KINDS = ("timeDate", "timeDuration", "timeCycle")


def local(element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def bpmn(tag: str) -> str:
    return f"{{{BPMN}}}{tag}"


def spiff(tag: str) -> str:
    return f"{{{SPIFF}}}{tag}"


@dataclass
class Node:
    id: str
    kind: str  # the element's local name: userTask, exclusiveGateway, boundaryEvent...
    name: str
    container: str  # id of the process or sub-process holding it
    process: str  # id of the top-level process
    element: etree._Element = field(repr=False)
    incoming: list[str] = field(default_factory=list)
    outgoing: list[str] = field(default_factory=list)
    default: str | None = None
    attached_to: str | None = None
    event_definitions: list[str] = field(default_factory=list)
    triggered_by_event: bool = False
    lane: str | None = None

    @property
    def is_task(self) -> bool:
        return self.kind in TASKS

    @property
    def is_activity(self) -> bool:
        return self.kind in ACTIVITIES

    @property
    def is_gateway(self) -> bool:
        return self.kind in GATEWAYS

    @property
    def is_event(self) -> bool:
        return self.kind in EVENTS

    def properties(self) -> dict[str, str]:
        """spiffworkflow:property name → value (form, dueDate, agency)."""
        found = {}
        for extensions in self.element.findall(bpmn("extensionElements")):
            for prop in extensions.findall(f"{spiff('properties')}/{spiff('property')}"):
                found[prop.get("name", "")] = prop.get("value", "")
        return found

    def extension_text(self, tag: str) -> str | None:
        for extensions in self.element.findall(bpmn("extensionElements")):
            found = extensions.find(spiff(tag))
            if found is not None:
                return found.text or ""
        return None

    def timer(self) -> tuple[str, str] | None:
        """(timeDate|timeDuration|timeCycle, expression) of a timer event."""
        definition = self.element.find(bpmn("timerEventDefinition"))
        if definition is None:
            return None
        for kind in TIMER_KINDS:
            found = definition.find(bpmn(kind))
            if found is not None:
                return kind, (found.text or "").strip()
        return "timer", ""


@dataclass
class Flow:
    id: str
    name: str
    source: str
    target: str
    condition: str | None
    container: str
    process: str
    element: etree._Element = field(repr=False)


@dataclass
class Container:
    id: str
    kind: str  # process, subProcess, transaction, adHocSubProcess
    name: str
    process: str
    triggered_by_event: bool = False
    nodes: list[str] = field(default_factory=list)


@dataclass
class Diagram:
    file: str
    root: etree._Element = field(repr=False)
    processes: list[str] = field(default_factory=list)
    containers: dict[str, Container] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    flows: dict[str, Flow] = field(default_factory=dict)
    lanes: list[tuple[str, str]] = field(default_factory=list)  # (lane id, name)
    participants: list[tuple[str, str]] = field(default_factory=list)
    drawn: set[str] = field(default_factory=set)  # ids with a BPMNShape or BPMNEdge


def read_diagram(root: etree._Element, file: str) -> Diagram:
    diagram = Diagram(file=file, root=root)
    for participant in root.iter(bpmn("participant")):
        diagram.participants.append((participant.get("id", ""), participant.get("name", "")))
    for process in root.findall(bpmn("process")):
        process_id = process.get("id", "")
        diagram.processes.append(process_id)
        _read_container(diagram, process, process_id)
    for shape in root.iter(f"{{{BPMNDI}}}BPMNShape", f"{{{BPMNDI}}}BPMNEdge"):
        if shape.get("bpmnElement"):
            diagram.drawn.add(shape.get("bpmnElement"))
    for flow in diagram.flows.values():
        if flow.source in diagram.nodes:
            diagram.nodes[flow.source].outgoing.append(flow.id)
        if flow.target in diagram.nodes:
            diagram.nodes[flow.target].incoming.append(flow.id)
    # Boundary events sit in the lane of the task they are attached to (as SpiffWorkflow reads it).
    for node in diagram.nodes.values():
        if node.kind == "boundaryEvent" and node.lane is None and node.attached_to in diagram.nodes:
            node.lane = diagram.nodes[node.attached_to].lane
    return diagram


def _read_container(diagram: Diagram, element, process_id: str) -> None:
    container = Container(id=element.get("id", ""), kind=local(element), name=element.get("name", ""),
                          process=process_id, triggered_by_event=element.get("triggeredByEvent") == "true")
    diagram.containers[container.id] = container
    for lane in element.iter(bpmn("lane")):
        if lane.getparent() is not None and lane.getparent().getparent() is element:
            diagram.lanes.append((lane.get("id", ""), lane.get("name", "")))
    lanes = {}
    for lane in element.iter(bpmn("lane")):
        for ref in lane.findall(bpmn("flowNodeRef")):
            lanes[(ref.text or "").strip()] = lane.get("name", "")
    for child in element:
        kind = local(child)
        if kind in FLOW_NODES:
            node = Node(id=child.get("id", ""), kind=kind, name=(child.get("name") or "").strip(),
                        container=container.id, process=process_id, element=child, default=child.get("default"),
                        attached_to=child.get("attachedToRef"),
                        event_definitions=[local(d) for d in child if local(d).endswith("EventDefinition")],
                        triggered_by_event=child.get("triggeredByEvent") == "true",
                        lane=lanes.get(child.get("id", "")))
            diagram.nodes[node.id] = node
            container.nodes.append(node.id)
            if kind in SUB_PROCESSES:
                _read_container(diagram, child, process_id)
                for inner in diagram.containers[node.id].nodes:
                    if diagram.nodes[inner].lane is None:
                        diagram.nodes[inner].lane = node.lane
        elif kind == "sequenceFlow":
            condition = child.find(bpmn("conditionExpression"))
            diagram.flows[child.get("id", "")] = Flow(
                id=child.get("id", ""), name=(child.get("name") or "").strip(), source=child.get("sourceRef", ""),
                target=child.get("targetRef", ""), container=container.id, process=process_id, element=child,
                condition=(condition.text or "").strip() if condition is not None else None)
