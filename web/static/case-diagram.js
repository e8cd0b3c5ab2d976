// Draws the case's process diagram with bpmn-js and marks the steps done and the current ones.
(async function () {
  const container = document.getElementById("case-diagram");
  if (!container || !window.BpmnJS) return;
  const [xml, state] = await Promise.all([
    fetch(container.dataset.diagram, { credentials: "same-origin" }).then((r) => r.text()),
    fetch(container.dataset.state, { credentials: "same-origin" }).then((r) => r.json()),
  ]);
  container.textContent = "";
  const viewer = new window.BpmnJS({ container });
  await viewer.importXML(xml);
  const canvas = viewer.get("canvas");
  const registry = viewer.get("elementRegistry");
  for (const id of state.completed) if (registry.get(id)) canvas.addMarker(id, "completed");
  for (const id of state.current) if (registry.get(id)) canvas.addMarker(id, "current");
  canvas.zoom("fit-viewport");
  container.dataset.ready = "true";
})();
