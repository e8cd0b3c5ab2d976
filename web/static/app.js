// Progressive enhancement only: every page works without it.
import { initAll } from "/static/vendor/govuk/govuk-frontend.min.js";
import { initAll as initMoj } from "/static/vendor/moj/moj-frontend.js";

// Conditional reveals under radios. GOV.UK Frontend's Radios module marks each radio with
// aria-expanded, which WCAG checkers (axe-core) reject on a radio; this does the same showing and
// hiding with aria-controls alone, so the Radios module is not started.
function revealConditionals(group) {
  const radios = [...group.querySelectorAll("input.govuk-radios__input[data-aria-controls]")];
  const sync = () => {
    for (const radio of radios) {
      const target = document.getElementById(radio.dataset.ariaControls);
      if (target) target.classList.toggle("govuk-radios__conditional--hidden", !radio.checked);
    }
  };
  for (const radio of radios) radio.setAttribute("aria-controls", radio.dataset.ariaControls);
  // A radio of the same name elsewhere (another group) unchecks these without a change event here.
  const names = new Set(radios.map((radio) => radio.name));
  document.addEventListener("change", (event) => {
    if (event.target instanceof HTMLInputElement && names.has(event.target.name)) sync();
  });
  sync();
}

document.body.classList.add("js-enabled", "govuk-frontend-supported");
for (const group of document.querySelectorAll('[data-module="govuk-radios"]')) {
  group.removeAttribute("data-module");
  revealConditionals(group);
}
initAll();
initMoj();  // MOJ Pattern Library components (sortable tables, button menus) on staff pages
