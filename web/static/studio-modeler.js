// The studio's diagram (bpmn-js) and decision table (dmn-js) editors. The page passes everything
// through data-* attributes on #studio-modeler: the file's address, where to save it, the draft's
// lock version and the CSRF token. Saving posts the XML to the draft only; the server parses it
// safely, and nothing runs until the draft is checked and published.
(async function () {
  const container = document.getElementById("studio-modeler");
  if (!container) return;
  const status = document.getElementById("studio-modeler-status");
  const saveButton = document.getElementById("studio-modeler-save");
  const kind = container.dataset.kind;
  const wanted = container.dataset.element;
  let lockVersion = Number(container.dataset.lockVersion);
  let unsaved = false;

  const say = (text) => { status.textContent = text; };

  const response = await fetch(container.dataset.fileUrl, { credentials: "same-origin" });
  if (!response.ok) {
    say(`The file could not be loaded (${response.status}).`);
    return;
  }
  const xml = await response.text();
  const fallback = container.querySelector(".app-modeler__fallback");
  if (fallback) fallback.remove();
  const canvasHolder = document.createElement("div");
  canvasHolder.className = "app-modeler__canvas";
  container.appendChild(canvasHolder);

  let modeler;
  try {
    modeler = kind === "bpmn" ? await openDiagram(canvasHolder, xml) : await openTable(canvasHolder, xml);
  } catch (error) {
    say(`The editor could not open this file: ${error.message}`);
    return;
  }

  async function openDiagram(holder, text) {
    const diagram = new window.BpmnJS({ container: holder });
    await diagram.importXML(text);
    const canvas = diagram.get("canvas");
    canvas.zoom("fit-viewport");
    if (wanted) {
      const element = diagram.get("elementRegistry").get(wanted);
      if (element) {
        canvas.addMarker(wanted, "app-modeler__wanted");
        diagram.get("selection").select(element);
        canvas.zoom(1);
        const box = canvas.viewbox();  // the element in the middle, clear of the palette
        canvas.viewbox({ x: element.x + element.width / 2 - box.width / 2,
                         y: element.y + element.height / 2 - box.height / 2,
                         width: box.width, height: box.height });
        say(`${wanted} is selected and outlined in the diagram.`);
      } else {
        say(`The diagram has no element ${wanted}.`);
      }
    }
    diagram.on("commandStack.changed", () => { unsaved = true; say("You have changes that are not saved yet."); });
    return diagram;
  }

  async function openTable(holder, text) {
    const tables = new window.DmnJS({ container: holder });
    const watched = new WeakSet();
    await tables.importXML(text);
    const views = tables.getViews().filter((view) => view.type === "decisionTable");
    const view = views.find((v) => v.element.id === wanted) || views[0];
    if (view) await tables.open(view);
    tables.on("views.changed", watchActiveViewer);
    watchActiveViewer();
    if (wanted && view && view.element.id !== wanted) say(`The decision tables have no element ${wanted}.`);
    return tables;

    function watchActiveViewer() {
      const viewer = tables.getActiveViewer();
      if (viewer && !watched.has(viewer)) {
        watched.add(viewer);
        viewer.get("eventBus").on("elements.changed", () => {
          unsaved = true;
          say("You have changes that are not saved yet.");
        });
      }
    }
  }

  container.dataset.ready = "true";
  window.addEventListener("beforeunload", (event) => {
    if (unsaved) event.preventDefault();
  });
  if (!saveButton) return;
  saveButton.hidden = false;
  saveButton.addEventListener("click", async () => {
    saveButton.disabled = true;
    say("Saving…");
    try {
      const { xml: text } = await modeler.saveXML({ format: true });
      const saved = await fetch(container.dataset.saveUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": container.dataset.csrfToken },
        body: JSON.stringify({ text, lock_version: lockVersion }),
      });
      const answer = await saved.json().catch(() => ({ error: `Not saved (${saved.status}).` }));
      if (saved.ok) {
        lockVersion = answer.lock_version;
        unsaved = false;
        say(answer.message);
      } else {
        say(answer.error || `Not saved (${saved.status}).`);
      }
    } catch (error) {
      say(`Not saved: ${error.message}`);
    } finally {
      saveButton.disabled = false;
    }
  });
})();
