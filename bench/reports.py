"""Report benchmark: how long the statutory figures and the dashboard take on PostgreSQL with
100,000 cases (bench/pages.py's data: 3.8 million audit rows, 1,000,000 human_task rows), with
and without the indexes of migration 0006.

    python -m bench.reports --json [--quick] [--database-url URL] [--schema NAME] [--reuse] [--runs N]

1. Load. bench/pages.py's loader fills the schema (`bench_pages`, or `bench_pages_quick` with
   --quick, the same schemas as bench.pages, so one load serves both); --reuse keeps an earlier
   load of the same shape. Nothing is copied from it: its functions are imported.
2. Measure. The queries the pages run, called as the web app calls them (engine/reports), with
   the pages' default periods at the benchmark's clock (2026-03-02): the statutory figures for the
   last complete financial year, the dashboard for the last twelve months (and its five parts one
   by one). Each is run once to warm the caches, then `--runs` times (5): median and worst wall
   time, results fetched. Under these index sets: none of 0006's, all of them, and all but each
   one in turn (what each index is worth). Then, with all of them, process analytics and the
   XES export of the same twelve months, once each (they read every event of the cohort).
3. The schema is left with the indexes it had before the run.

The last line printed is one JSON object; docs/performance.md explains the numbers.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.orm import Session

from bench.pages import (DEFAULT_URL, FULL, NOW, QUICK, TODAY, data_shape, load, machine, previous_load,
                         split_url)
from engine.reports import (build_dashboard, last_complete_financial_year, last_twelve_months, process_analytics,
                            statutory_figures)
from engine.reports import dashboard as dashboard_parts
from engine.reports.eventlog import xes_chunks
from engine.reports.facts import published_facts
from engine.reports.history import cohort_history

TARGET_SECONDS = 1.0
MIGRATION = importlib.import_module("engine.migrations.versions.0006_report_indexes")
INDEXES: dict[str, str] = MIGRATION.index_statements("postgresql")


def log(message: str) -> None:
    print(f"[bench.reports {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def existing_indexes(connection: sa.Connection) -> set[str]:
    return set(connection.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                                       "AND indexname = ANY(:names)"), {"names": list(INDEXES)}).scalars())


def use_indexes(engine: sa.Engine, wanted: set[str]) -> dict[str, float]:
    """Create or drop 0006's indexes so that exactly `wanted` exist; seconds each creation took."""
    built = {}
    with engine.begin() as connection:
        present = existing_indexes(connection)
        for name in sorted(present - wanted):
            connection.execute(text(f"DROP INDEX {name}"))
        for name in sorted(wanted - present):
            started = time.perf_counter()
            connection.execute(text(INDEXES[name]))
            built[name] = round(time.perf_counter() - started, 1)
        for table in ("audit_event", "case_review", "outbox"):
            connection.execute(text(f"ANALYZE {table}"))
    return built


def timed(action: Callable[[], Any], runs: int) -> dict[str, float]:
    action()  # warm the caches and the statement cache
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return {"median_ms": round(statistics.median(seconds) * 1000, 1), "worst_ms": round(max(seconds) * 1000, 1)}


def measure(engine: sa.Engine, runs: int) -> dict[str, Any]:
    statutory_period = last_complete_financial_year(TODAY)
    dashboard_period = last_twelve_months(TODAY)
    with Session(engine) as db:
        calls = {
            "statutory": lambda: statutory_figures(db, statutory_period),
            "dashboard": lambda: build_dashboard(db, dashboard_period, TODAY),
            "dashboard.applications": lambda: dashboard_parts.applications_by_month(db, dashboard_period),
            "dashboard.decisions": lambda: dashboard_parts.decisions_by_month(db, dashboard_period),
            "dashboard.timings": lambda: dashboard_parts.timings(db, dashboard_period, published_facts(db)),
            "dashboard.actions": lambda: dashboard_parts.actions_by_agency(db, dashboard_period, TODAY),
            "dashboard.escalations": lambda: dashboard_parts.escalations(db, dashboard_period,
                                                                            published_facts(db)),
        }
        return {name: timed(call, runs) for name, call in calls.items()}


def measure_cohort(engine: sa.Engine) -> dict[str, Any]:
    """Process analytics and the XES export of the dashboard's twelve months, once each."""
    period = last_twelve_months(TODAY)
    result: dict[str, Any] = {"period": period.query()}
    with Session(engine) as db:
        started = time.perf_counter()
        analytics = process_analytics(db, period, NOW)
        result["process_analytics"] = {"ms": round((time.perf_counter() - started) * 1000, 1),
                                       "cases": analytics.cases, "events": analytics.events}
    with Session(engine) as db:
        started, size = time.perf_counter(), 0
        for chunk in xes_chunks(cohort_history(db, period), "bench"):
            size += len(chunk)
        result["xes_export"] = {"ms": round((time.perf_counter() - started) * 1000, 1), "bytes": size}
    return result


def figures(engine: sa.Engine) -> dict[str, Any]:
    """What the measured queries found, so a reader can see they did real work."""
    with Session(engine) as db:
        statutory = statutory_figures(db, last_complete_financial_year(TODAY))
        board = build_dashboard(db, last_twelve_months(TODAY), TODAY)
    return {"statutory": {"period": statutory.period.query(), **statutory.as_dict()},
            "dashboard": {"period": board.period.query(),
                          "applications": sum(m.total for m in board.applications),
                          "decisions": sum(m.total for m in board.decisions),
                          "timings": {t.key: t.spread.count for t in board.timings},
                          "actions": sum(a.total for a in board.actions),
                          "escalations_requested": board.escalations.requested}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    shape = QUICK if args.quick else FULL
    server_url, schema, url = split_url(args.database_url or DEFAULT_URL,
                                        args.schema or ("bench_pages_quick" if args.quick else "bench_pages"))
    info = previous_load(server_url, schema, shape) if args.reuse else None
    if info is None:
        log(f"loading {shape.cases:,} cases into schema {schema} (bench.pages' loader)")
        with tempfile.TemporaryDirectory(prefix="casereview-bench-reports-") as tmp:
            info = load(server_url, schema, url, shape, Path(tmp))
    else:
        log(f"reusing schema {schema} (loaded in {info['seconds']} s)")
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        had = existing_indexes(connection)
    result: dict[str, Any] = {"mode": "quick" if args.quick else "full", "schema": schema,
                              "shape": data_shape(engine, schema), "load": info, "runs": args.runs,
                              "target_ms": TARGET_SECONDS * 1000, "indexes": {name: INDEXES[name] for name in INDEXES}}
    try:
        sets = {"none": set(), **{f"all but {name}": set(INDEXES) - {name} for name in INDEXES},
                "all": set(INDEXES)}
        result["timings"] = {}
        for label, wanted in sets.items():
            built = use_indexes(engine, wanted)
            log(f"measuring with indexes: {label}")
            result["timings"][label] = measure(engine, args.runs)
            if built:
                result.setdefault("index_build_seconds", {}).update(built)
        result["figures"] = figures(engine)
        log("process analytics and the XES export (all indexes)")
        result["cohort"] = measure_cohort(engine)
        best = result["timings"]["all"]
        result["meets_target"] = {name: best[name]["worst_ms"] < TARGET_SECONDS * 1000
                                  for name in ("statutory", "dashboard")}
        result["machine"] = machine(engine)
    finally:
        use_indexes(engine, had)
        engine.dispose()
    return result


def human(result: dict[str, Any]) -> str:
    rows = result["shape"]["rows"]
    lines = [f"{rows['case_review']:,} cases, {rows['audit_event']:,} audit rows; {result['runs']} runs each; "
             f"target < {TARGET_SECONDS * 1000:.0f} ms"]
    for label, timings in result["timings"].items():
        lines.append(f"  indexes: {label}")
        for name, numbers in timings.items():
            lines.append(f"    {name:24} median {numbers['median_ms']:8.1f}  worst {numbers['worst_ms']:8.1f} ms")
    cohort = result["cohort"]
    lines.append(f"  process analytics {cohort['process_analytics']['ms']:.0f} ms "
                 f"({cohort['process_analytics']['events']:,} events); XES export {cohort['xes_export']['ms']:.0f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object (the last line)")
    parser.add_argument("--quick", action="store_true", help="10,000 cases (bench.pages --quick's shape)")
    parser.add_argument("--database-url", help=f"PostgreSQL server and database (default {DEFAULT_URL})")
    parser.add_argument("--schema", help="schema to fill and measure (default bench_pages; bench_pages_quick "
                                         "with --quick: the schemas bench.pages fills)")
    parser.add_argument("--reuse", action="store_true", help="keep the schema if a previous load has the same shape")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each query after one warm-up (5)")
    args = parser.parse_args(argv)
    if not (args.database_url or DEFAULT_URL).startswith("postgresql"):
        raise SystemExit("bench.reports needs PostgreSQL")
    result = run(args)
    with contextlib.suppress(Exception):  # the summary must never cost the results
        print(human(result), file=sys.stderr, flush=True)
    print(json.dumps(result, default=str) if args.json else json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
