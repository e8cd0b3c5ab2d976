"""BPMN lint rules equivalent to bpmnlint's `recommended` set, in Python over the parsed XML.

Rule names and messages follow bpmnlint, so a process owner who knows the modeler's linter
recognises them. Left out on purpose: `no-inclusive-gateway` (SpiffWorkflow runs inclusive
gateways, and the project allows them with a default flow), `no-overlapping-elements`
(layout only), `ad-hoc-sub-process`, `event-based-gateway`, `link-event`, `global` and
`superfluous-termination` (constructs the shipped processes do not use; SpiffWorkflow's own
parser rejects the broken forms). Added: `gateway-default-flow`, the project's rule that a
gateway choosing by condition always has somewhere to go.
"""
from __future__ import annotations

from collections import Counter
from typing import Callable, Iterator

from .bpmnmodel import Diagram, Node
from .problems import Problem

Rule = Callable[[Diagram], Iterator[tuple[str, str]]]  # yields (element id, message)
RULES: dict[str, Rule] = {}


def rule(name: str):
    def register(check: Rule) -> Rule:
        RULES[name] = check
        return check
    return register


def lint_diagram(diagram: Diagram) -> list[Problem]:
    problems = []
    for name, check in RULES.items():
        for element, message in check(diagram):
            problems.append(Problem(diagram.file, element, name, message))
    return problems


def _containers(diagram: Diagram):
    return diagram.containers.values()


def _label(container) -> str:
    return "Process" if container.kind == "process" else "Sub process"


@rule("start-event-required")
def start_event_required(diagram: Diagram):
    for container in _containers(diagram):
        if not any(diagram.nodes[n].kind == "startEvent" for n in container.nodes):
            yield container.id, f"{_label(container)} is missing start event"


@rule("end-event-required")
def end_event_required(diagram: Diagram):
    for container in _containers(diagram):
        if not any(diagram.nodes[n].kind == "endEvent" for n in container.nodes):
            yield container.id, f"{_label(container)} is missing end event"


@rule("no-disconnected")
def no_disconnected(diagram: Diagram):
    for node in diagram.nodes.values():
        if node.kind == "boundaryEvent" and node.outgoing:
            continue
        if (node.is_task or node.is_gateway or node.is_event or node.kind == "subProcess") \
                and not node.triggered_by_event and not node.incoming and not node.outgoing:
            yield node.id, "Element is not connected"


@rule("no-implicit-split")
def no_implicit_split(diagram: Diagram):
    for node in diagram.nodes.values():
        if not (node.is_task or node.is_event):
            continue
        plain = [f for f in node.outgoing if diagram.flows[f].condition is None and f != node.default]
        if len(plain) > 1:
            yield node.id, "Flow splits implicitly"


@rule("no-duplicate-sequence-flows")
def no_duplicate_sequence_flows(diagram: Diagram):
    seen: dict[tuple, str] = {}
    for flow in diagram.flows.values():
        key = (flow.source, flow.target, flow.condition)
        if key in seen:
            yield flow.id, f"SequenceFlow is a duplicate of {seen[key]}"
        else:
            seen[key] = flow.id


def _conditional_forking(diagram: Diagram, node: Node) -> bool:
    return bool(node.default) \
        or (node.kind in ("exclusiveGateway", "inclusiveGateway") and len(node.outgoing) > 1) \
        or any(diagram.flows[f].condition is not None for f in node.outgoing)


@rule("conditional-flows")
def conditional_flows(diagram: Diagram):
    for node in diagram.nodes.values():
        if not _conditional_forking(diagram, node):
            continue
        for flow_id in node.outgoing:
            if diagram.flows[flow_id].condition is None and flow_id != node.default:
                yield flow_id, "Sequence flow is missing condition"


@rule("label-required")
def label_required(diagram: Diagram):
    for node in diagram.nodes.values():
        if node.kind in ("parallelGateway", "eventBasedGateway", "subProcess"):
            continue
        if node.is_gateway and len(node.outgoing) <= 1:
            continue  # joining gateways need no label
        if not node.name:
            yield node.id, "Element is missing label/name"
    for flow in diagram.flows.values():
        if flow.condition is not None and not flow.name:
            yield flow.id, "Element is missing label/name"
    for element_id, name in [*diagram.participants, *diagram.lanes]:
        if not name.strip():
            yield element_id, "Element is missing label/name"


@rule("single-blank-start-event")
def single_blank_start_event(diagram: Diagram):
    for container in _containers(diagram):
        blank = [n for n in container.nodes
                 if diagram.nodes[n].kind == "startEvent" and not diagram.nodes[n].event_definitions]
        if len(blank) > 1:
            yield container.id, f"{_label(container)} has multiple blank start events"


@rule("no-gateway-join-fork")
def no_gateway_join_fork(diagram: Diagram):
    for node in diagram.nodes.values():
        if node.is_gateway and len(node.incoming) > 1 and len(node.outgoing) > 1:
            yield node.id, "Gateway forks and joins"


@rule("superfluous-gateway")
def superfluous_gateway(diagram: Diagram):
    for node in diagram.nodes.values():
        if node.is_gateway and len(node.incoming) == 1 and len(node.outgoing) == 1:
            yield node.id, "Gateway is superfluous. It only has one source and target."


@rule("fake-join")
def fake_join(diagram: Diagram):
    for node in diagram.nodes.values():
        if (node.is_task or node.is_event) and len(node.incoming) > 1:
            yield node.id, "Incoming flows do not join"


def _compensation(node: Node) -> bool:
    return node.element.get("isForCompensation") == "true" or node.event_definitions == ["compensateEventDefinition"]


@rule("no-implicit-start")
def no_implicit_start(diagram: Diagram):
    for node in diagram.nodes.values():
        if node.kind in ("startEvent", "boundaryEvent") or node.triggered_by_event or _compensation(node):
            continue
        if node.kind == "intermediateCatchEvent" and node.event_definitions == ["linkEventDefinition"]:
            continue
        if not node.incoming:
            yield node.id, "Element is an implicit start"


@rule("no-implicit-end")
def no_implicit_end(diagram: Diagram):
    for node in diagram.nodes.values():
        if node.kind == "endEvent" or node.triggered_by_event or _compensation(node):
            continue
        if node.kind == "intermediateThrowEvent" and node.event_definitions == ["linkEventDefinition"]:
            continue
        if not node.outgoing:
            yield node.id, "Element is an implicit end"


@rule("no-complex-gateway")
def no_complex_gateway(diagram: Diagram):
    for node in diagram.nodes.values():
        if node.kind == "complexGateway":
            yield node.id, "Element has disallowed type bpmn:ComplexGateway"


@rule("single-event-definition")
def single_event_definition(diagram: Diagram):
    for node in diagram.nodes.values():
        if node.is_event and len(node.event_definitions) > 1:
            yield node.id, "Event has multiple event definitions"


@rule("sub-process-blank-start-event")
def sub_process_blank_start_event(diagram: Diagram):
    for container in _containers(diagram):
        if container.kind == "process" or container.triggered_by_event:
            continue
        for node_id in container.nodes:
            node = diagram.nodes[node_id]
            if node.kind == "startEvent" and node.event_definitions:
                yield node.id, "Start event must be blank"


@rule("event-sub-process-typed-start-event")
def event_sub_process_typed_start_event(diagram: Diagram):
    for container in _containers(diagram):
        if not container.triggered_by_event:
            continue
        for node_id in container.nodes:
            node = diagram.nodes[node_id]
            if node.kind == "startEvent" and not node.event_definitions:
                yield node.id, "Start event is missing event definition"


@rule("no-bpmndi")
def no_bpmndi(diagram: Diagram):
    # The studio shows diagrams: an element without a shape would run but never be seen.
    for element_id in [*diagram.nodes, *diagram.flows]:
        if element_id not in diagram.drawn:
            yield element_id, "Element is missing bpmndi"


@rule("gateway-default-flow")
def gateway_default_flow(diagram: Diagram):
    for node in diagram.nodes.values():
        if node.kind not in ("exclusiveGateway", "inclusiveGateway"):
            continue
        conditional = [f for f in node.outgoing if diagram.flows[f].condition is not None]
        if node.default and node.default not in node.outgoing:
            yield node.id, f"default flow {node.default!r} is not one of the gateway's outgoing flows"
        elif node.default and diagram.flows[node.default].condition is not None:
            yield node.default, "a default flow must not have a condition"
        elif conditional and not node.default:
            yield node.id, ("gateway chooses by condition but has no default flow: "
                            "mark one outgoing flow as the default, for when no condition holds")


def duplicate_ids(diagram_root, file: str) -> list[Problem]:
    """Two elements with one id make every other rule (and SpiffWorkflow) guess."""
    counts = Counter(e.get("id") for e in diagram_root.iter() if isinstance(e.tag, str) and e.get("id"))
    return [Problem(file, element, "unique-ids", f"the id is used {count} times")
            for element, count in counts.items() if count > 1]
