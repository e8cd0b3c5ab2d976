"""Browser tests' support: the app served on a SQLite case review, Chromium driven by Playwright,
and checks on every page a test loads: axe-core for WCAG 2.2 AA, reflow at 320 CSS pixels (WCAG
1.4.10: nothing scrolls sideways), and the console for Content-Security-Policy errors, uncaught
script errors and failed loads (`Findings`).

Chromium is Debian's (/usr/bin/chromium, set CASEREVIEW_CHROMIUM to use another); Playwright
never downloads a browser. axe-core comes from npm (`make assets` copies it to web/static/vendor)
and is put into each document by a context init script, not `page.add_script_tag`, which the
app's CSP refuses (see `Visitor._inject_axe`).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from engine.clock import FixedClock
from engine.config import Settings
from engine.demo import seed_accounts
from engine.service import CaseReview
from web import create_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("CASEREVIEW_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
AXE = ROOT / "web" / "static" / "vendor" / "axe-core" / "axe.min.js"
AXE_SOURCE = AXE.read_text(encoding="utf-8") + "\n;undefined" if AXE.exists() else ""
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]
PASSWORD = "test-password"
TIMEOUT_MS = 30_000  # generous: CI machines are busy, and nothing here waits on a timer

# Runs in the page: the violations, each with the elements it found, as plain data.
AXE_RUN = """async (tags) => {
  const result = await window.axe.run(document, {
    runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return {version: window.axe.version, violations: result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({target: n.target.map(String).join(" "), html: n.html,
                                summary: n.failureSummary || ""}))}))};
}"""

# WCAG 1.4.10 (reflow): at 320 CSS pixels wide no page scrolls sideways. Wide tables scroll inside
# their own focusable region (`.app-table-scroll`), which does not widen the document.
REFLOW_WIDTH = 320
# Runs in the page at that width: the document's width, and the elements reaching past its right edge
# (the innermost ones, which are what needs fixing) to say where the overflow comes from.
REFLOW_RUN = """async (width) => {
  // Let the page answer the resize first (Chart.js redraws from a ResizeObserver, a frame later).
  await new Promise((done) => setTimeout(() => requestAnimationFrame(() => requestAnimationFrame(done)), 100));
  const wide = [];
  for (const element of document.body.querySelectorAll("*")) {
    const box = element.getBoundingClientRect();
    if (box.right > width + 1 && box.width > 0 && ![...element.children].some(
        (child) => child.getBoundingClientRect().right > width + 1)) {
      let scrolls = false;
      for (let up = element.parentElement; up && up !== document.body; up = up.parentElement) {
        if (up.scrollWidth > up.clientWidth && getComputedStyle(up).overflowX !== "visible") { scrolls = true; break; }
      }
      // Inside a scrolling region but still widening the page: positioned against something outside it.
      wide.push(element.tagName.toLowerCase() + (element.id ? "#" + element.id : "")
        + (element.className && typeof element.className === "string" ? "." + element.className.trim().split(/\\s+/).join(".") : "")
        + " (right edge " + Math.round(box.right) + "px" + (scrolls ? ", inside a scrolling region" : "") + ")");
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, wide: wide.slice(0, 8)};
}"""

# Runs in every document before its own scripts: keeps the page's CSP violation events.
CSP_LISTENER = """document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspReport && window.__cspReport({directive: event.violatedDirective, blocked: event.blockedURI,
    source: event.sourceFile, line: event.lineNumber, sample: event.sample, page: location.pathname});
});"""
CSP_WORDS = re.compile(r"content[- ]security[- ]policy", re.I)
OWN_STATUS = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d\b")


def missing_tools() -> str | None:
    """Why browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed: pip install 'playwright>=1.49,<1.66'"
    if not CHROMIUM.exists():
        return f"Chromium is not at {CHROMIUM}: apt-get install chromium (or set CASEREVIEW_CHROMIUM)"
    if not AXE.exists():
        return f"axe-core is not at {AXE}: run `make assets`"
    return None


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


# ---------------------------------------------------------------------------------------------
# The app under test
# ---------------------------------------------------------------------------------------------

def make_service(directory: Path, now) -> tuple[CaseReview, FixedClock]:
    """A case review on its own SQLite file, with the demo accounts, on a clock tests move."""
    clock = FixedClock(now)
    settings = Settings(database_url=f"sqlite:///{directory / 'browser.sqlite3'}",
                        outbox_dir=directory / "outbox", demo_password=PASSWORD)
    service = CaseReview(settings, clock)
    service.init()
    seed_accounts(service)
    return service, clock


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-") -> None:  # one line per request drowns the report
        pass


class LiveServer:
    """The Flask app served from a background thread on 127.0.0.1, CSRF protection on."""

    def __init__(self, service: CaseReview, **config):
        self.app = create_app(service=service, config={
            "TESTING": True, "SECRET_KEY": secrets.token_hex(32), "WTF_CSRF_ENABLED": True,
            # Let the browser keep the stylesheets, scripts and fonts (axe also re-reads the
            # stylesheets on every run) instead of asking the one-process server again each page.
            "SEND_FILE_MAX_AGE_DEFAULT": 3600, **config})
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True,
                                  request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="browser-test-server",
                                       daemon=True)

    def start(self) -> "LiveServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# What the checks found
# ---------------------------------------------------------------------------------------------

@dataclass
class Findings:
    """Everything the page checks found during one test, from every person's browser."""

    pages_checked: list[str] = field(default_factory=list)
    violations: list[dict] = field(default_factory=list)  # {"page", "title", "rule", ...}
    csp: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    reflow: list[str] = field(default_factory=list)  # pages wider than REFLOW_WIDTH at that width
    axe_version: str = ""

    def accessibility_report(self) -> str:
        """Each violation once per rule and element, with every page (and person) it was found on."""
        if not self.violations:
            return ""
        grouped: dict[tuple, dict] = {}
        for v in self.violations:
            for node in v["nodes"]:
                entry = grouped.setdefault((v["rule"], node["target"]), {"violation": v, "node": node, "pages": []})
                where = f"{v['page']} “{v['title']}” ({v['who']})"
                if where not in entry["pages"]:
                    entry["pages"].append(where)
        lines = [f"axe-core {self.axe_version} found {len(grouped)} violation(s) of {', '.join(AXE_TAGS)}:"]
        for (rule, target), entry in grouped.items():
            v, node = entry["violation"], entry["node"]
            lines += [f"\n  [{v['impact']}] {rule}: {v['help']}", f"    {v['helpUrl']}",
                      f"    element: {target}", f"    html: {node['html'][:300]}"]
            lines += [f"      {reason.strip()}" for reason in node["summary"].splitlines() if reason.strip()]
            lines.append(f"    on {len(entry['pages'])} page load(s):")
            lines += [f"      {where}" for where in entry["pages"]]
        return "\n".join(lines)

    def problems(self) -> str:
        """A readable account of every problem, or "" when the pages were clean."""
        parts = [self.accessibility_report()]
        if self.csp:
            parts.append("Content-Security-Policy errors:\n" + "\n".join(f"  {c}" for c in self.csp))
        if self.script_errors:
            parts.append("Uncaught script errors:\n" + "\n".join(f"  {e}" for e in self.script_errors))
        if self.console_errors:
            parts.append("Console errors:\n" + "\n".join(f"  {e}" for e in self.console_errors))
        if self.reflow:
            parts.append(f"Pages that scroll sideways at {REFLOW_WIDTH} CSS pixels (WCAG 1.4.10):\n"
                         + "\n".join(f"  {r}" for r in self.reflow))
        return "\n\n".join(p for p in parts if p)

    def assert_clean(self) -> None:
        assert self.pages_checked, "no page was checked"
        problems = self.problems()
        assert not problems, f"{problems}\n\n(pages checked: {len(self.pages_checked)})"


# ---------------------------------------------------------------------------------------------
# One person at a browser
# ---------------------------------------------------------------------------------------------

class Visitor:
    """One person's browser (a Playwright context with one tab). Every page it loads goes through
    `checked()`, which runs axe on it and notes CSP errors, so a test cannot skip the checks:
    `unchecked` lists any page that loaded without them and `Site.close` fails on it."""

    def __init__(self, browser, base_url: str, findings: Findings, who: str = "nobody"):
        self.findings = findings
        self.who = who
        self.context = browser.new_context(base_url=base_url, locale="en-GB", timezone_id="Europe/London",
                                           viewport={"width": 1280, "height": 1000})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.expose_function("__cspReport", self._csp_event)
        self.context.add_init_script(script=CSP_LISTENER)
        self.context.add_init_script(script=AXE_SOURCE)  # in every document, before its own scripts
        self.page = self.context.new_page()
        self.unchecked: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: findings.script_errors.append(
            f"{self._path()}: {error}"))
        self.page.on("load", lambda page: self.unchecked.append(self._path(page.url)))

    # -- listeners ------------------------------------------------------------------------
    def _path(self, url: str | None = None) -> str:
        url = url or self.page.url
        return re.sub(r"^https?://[^/]+", "", url) or "/"

    def _console(self, message) -> None:
        if message.type != "error":
            return
        text = f"{self._path()}: {message.text}"
        if CSP_WORDS.search(message.text):
            self.findings.csp.append(f"console: {text}")
        elif OWN_STATUS.match(message.text) and (message.location or {}).get("url") == self.page.url:
            pass  # the page's own 4xx status (a validation error, a 404 page): meant, not a fault
        else:
            self.findings.console_errors.append(text)

    def _csp_event(self, report: dict) -> None:
        self.findings.csp.append("securitypolicyviolation: " + json.dumps(report, sort_keys=True))

    # -- navigation -------------------------------------------------------------------------
    def open(self, path: str) -> "Visitor":
        self.page.goto(path)
        return self.checked()

    def navigates(self, action: Callable[[], object]) -> "Visitor":
        """Do something that loads a new page (press a button or a link, press Enter) and check it."""
        with self.page.expect_navigation(wait_until="load"):
            action()
        return self.checked()

    def checked(self) -> "Visitor":
        """Check the page now shown: axe finds no WCAG 2.2 AA violations (recorded, asserted by
        the test through `Findings.assert_clean`). Waits for the diagram of a case page first."""
        page = self.page
        page.wait_for_load_state("load")
        if page.locator("#case-diagram").count():
            try:
                page.wait_for_selector("#case-diagram[data-ready=true]", state="attached")
            except Exception as error:  # noqa: BLE001 - say why, not only that it timed out
                raise AssertionError(f"the diagram on {self._path()} was never drawn ({error}):\n"
                                     f"{self.findings.problems()}") from None
        if not page.evaluate("() => Boolean(window.axe)"):
            self._inject_axe()
        result = page.evaluate(AXE_RUN, AXE_TAGS)
        self.findings.axe_version = result["version"]
        path, title = self._path(), page.title()
        self.findings.pages_checked.append(path)
        for v in result["violations"]:
            self.findings.violations.append({
                "page": path, "title": title, "who": self.who, "rule": v["id"], "impact": v["impact"],
                "help": v["help"], "helpUrl": v["helpUrl"], "nodes": v["nodes"]})
        self._check_reflow(path)
        self.unchecked.clear()
        return self

    def _check_reflow(self, path: str) -> None:
        """WCAG 1.4.10: the page laid out 320 CSS pixels wide is no wider than that. The viewport is
        narrowed for the measurement and put back, so the test goes on at its own width."""
        page, size = self.page, self.page.viewport_size
        page.set_viewport_size({"width": REFLOW_WIDTH, "height": size["height"]})
        try:
            found = page.evaluate(REFLOW_RUN, REFLOW_WIDTH)
        finally:
            page.set_viewport_size(size)
        if found["scrollWidth"] > REFLOW_WIDTH:
            where = "; ".join(found["wide"]) or "no single element found"
            self.findings.reflow.append(f"{path} ({self.who}): {found['scrollWidth']}px wide, from {where}")

    def _inject_axe(self) -> None:
        # axe normally arrives by the context's init script. Not page.add_script_tag(path=...):
        # that adds an inline <script>, which the app's CSP (script-src 'self') rightly refuses,
        # leaving a CSP error of our own making. Init scripts and evaluation come through the
        # DevTools protocol, which the page's CSP does not govern.
        self.page.evaluate(AXE_SOURCE)
        assert self.page.evaluate("() => Boolean(window.axe)"), "axe-core could not be loaded"

    # -- people and pages -------------------------------------------------------------------
    def sign_in(self, email: str, password: str = PASSWORD) -> "Visitor":
        self.open("/sign-in")
        self.page.get_by_label("Email address").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.navigates(lambda: self.page.get_by_role("button", name="Sign in").click())
        assert self._path().startswith("/tasks"), f"{email} was not signed in: {self.main_text()[:300]}"
        self.who = email
        return self

    def main_text(self) -> str:
        return " ".join(self.page.locator("main").inner_text().split())

    def heading(self) -> str:
        return " ".join(self.page.locator("h1").first.inner_text().split())

    def inbox_rows(self) -> list[tuple[str, str]]:
        """(case reference, task title) of each row of the inbox now shown."""
        rows = []
        for row in self.page.locator("main table tbody tr").all():
            cells = row.locator("td")
            rows.append((cells.nth(0).inner_text().strip(), cells.nth(1).locator("a").inner_text().strip()))
        return rows

    def open_task(self, reference: str, title: str) -> "Visitor":
        """Open the task with this title on this case: from the case page's "Waiting now" list
        when that page is showing, else from the inbox."""
        if self._path() == f"/cases/{reference}":
            link = self.page.locator("main").get_by_role("link", name=title, exact=True)
            if link.count() == 1:
                self.navigates(link.click)
                assert self.heading() == title
                return self
        self.open("/tasks")
        row = self.page.locator("main table tbody tr").filter(
            has=self.page.get_by_role("link", name=reference, exact=True)).filter(
            has=self.page.get_by_role("link", name=title, exact=True))
        assert row.count() == 1, f"{self.who}: no task {title!r} for {reference} in {self.inbox_rows()}"
        self.navigates(lambda: row.get_by_role("link", name=title, exact=True).click())
        assert self.heading() == title
        return self

    def submit(self, button: str = "Submit") -> "Visitor":
        self.navigates(lambda: self.page.get_by_role("button", name=button, exact=True).click())
        return self

    def add(self, button: str) -> "Visitor":
        """Press an "Add a ..."/"Add another ..." button: the form comes back with one more item."""
        self.navigates(lambda: self.page.get_by_role("button", name=button, exact=True).click())
        assert not self.page.locator(".govuk-error-summary").count(), "adding an item is not a submission"
        return self

    # -- the keyboard ---------------------------------------------------------------------
    def focused(self) -> dict:
        """What has the focus: its tag, id, name, type, value, href and classes."""
        return self.page.evaluate("""() => { const e = document.activeElement; return e ? {
            tag: e.tagName.toLowerCase(), id: e.id, name: e.getAttribute("name"), type: e.getAttribute("type"),
            value: "value" in e ? e.value : null, href: e.getAttribute("href"), classes: e.className,
            checked: Boolean(e.checked), text: (e.innerText || "").trim()} : null; }""")

    def tab_to(self, selector: str, limit: int = 80) -> dict:
        """Press Tab until the element matching `selector` has the focus."""
        seen = []
        for _ in range(limit):
            self.page.keyboard.press("Tab")
            if self.page.evaluate("(s) => Boolean(document.activeElement && document.activeElement.matches(s))",
                                  selector):
                return self.focused()
            seen.append(self.focused())
        raise AssertionError(f"Tab never reached {selector}; it went through {seen}")

    def completed(self, title: str) -> "Visitor":
        """After submitting a task: the page says it is done (no error summary)."""
        assert not self.page.locator(".govuk-error-summary").count(), \
            f"{title}: {self.page.locator('.govuk-error-summary').inner_text()}"
        assert f"‘{title}’ is done" in self.main_text(), self.main_text()[:500]
        return self

    # -- fields (names are the form's field paths joined with "-") ------------------------
    def fill(self, name: str, value: str) -> "Visitor":
        self.page.locator(f"[name='{name}']").fill(value)
        return self

    def fill_date(self, name: str, value: date) -> "Visitor":
        for part, text in (("day", value.day), ("month", value.month), ("year", value.year)):
            self.page.locator(f"input[name='{name}-{part}']").fill(str(text))
        return self

    def choose(self, name: str, value: str) -> "Visitor":
        self.page.locator(f"input[name='{name}'][value='{value}']").check()
        return self

    def select(self, name: str, value: str) -> "Visitor":
        self.page.locator(f"select[name='{name}']").select_option(value)
        return self

    def close(self) -> None:
        self.context.close()


class Site:
    """The live app on a fresh case review, and the people using it in one test."""

    def __init__(self, browser, directory: Path, now):
        self.browser = browser
        self.service, self.clock = make_service(directory, now)
        self.server = LiveServer(self.service).start()
        self.url = self.server.url
        self.findings = Findings()
        self.visitors: list[Visitor] = []

    def visitor(self) -> Visitor:
        person = Visitor(self.browser, self.url, self.findings)
        self.visitors.append(person)
        return person

    def signed_in(self, email: str) -> Visitor:
        return self.visitor().sign_in(email)

    def close(self) -> None:
        unchecked = {v.who: list(v.unchecked) for v in self.visitors if v.unchecked}
        for person in self.visitors:
            person.close()
        self.server.stop()
        self.service.engine.dispose()
        if self.findings.problems():
            print("\n" + self.findings.problems())  # shown with the failure, whichever assert fails
        if unchecked:
            pytest.fail(f"pages loaded without the accessibility check: {unchecked}")
