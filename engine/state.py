"""Workflow state ⇄ JSON, without the process specs.

SpiffWorkflow's serializer writes the whole spec into every saved workflow and rebuilds it on
every load (spiffworkflow.md §6). A case's specs never change (its version is pinned), so each
compiled version keeps one set of spec objects and its own serializer that stores only the
spec's name and restores from those objects: loading costs the task tree, not the diagram.
"""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Mapping

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs import BpmnProcessSpec
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

SpecPair = tuple[BpmnProcessSpec, dict]


class _PinnedSpecWorkflowConverter(BpmnWorkflowConverter):
    """Stores `spec` as the process id and takes spec objects from the version's cache."""

    specs: Mapping[str, SpecPair] = {}

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["spec"] = workflow.spec.name
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct):
        spec, subprocess_specs = self.specs[dct.pop("spec")]
        dct.pop("subprocess_specs", None)
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], _uuid, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(_uuid(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _uuid(value):
    from uuid import UUID

    return UUID(value)


class StateSerializer:
    """One per compiled process version."""

    def __init__(self, specs: Mapping[str, SpecPair]):
        converter = type("VersionWorkflowConverter", (_PinnedSpecWorkflowConverter,), {"specs": specs})
        config = dict(SPIFF_CONFIG)
        config[BpmnWorkflow] = converter
        registry = BpmnWorkflowSerializer.configure(config)
        registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]))
        registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]))
        self._serializer = BpmnWorkflowSerializer(registry)

    def dumps(self, workflow: BpmnWorkflow) -> str:
        return self._serializer.serialize_json(workflow)

    def loads(self, text: str, script_engine) -> BpmnWorkflow:
        workflow = self._serializer.deserialize_json(text)
        workflow.script_engine = script_engine
        return workflow


def dumps_data(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)
