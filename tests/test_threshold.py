"""`casereview threshold-check`: the published decision table, month ends, leap years, bad input."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.cli import main


@pytest.fixture
def check(settings, monkeypatch):
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0

    def run(payload, expect=0):
        result = runner.invoke(main, ["threshold-check"], input=json.dumps(payload) if not isinstance(payload, str) else payload)
        assert result.exit_code == expect, (result.stdout, result.stderr)
        if expect:
            assert result.stdout == ""
            return result.stderr
        return json.loads(result.stdout)

    return run


def incident(occurred, reported=None, hate=None):
    item = {"occurred_on": occurred, "reported_on": reported or occurred}
    if hate is not None:
        item["hate"] = hate
    return item


def test_three_separate_occasions_with_a_recent_report(check):
    result = check({"application_date": "2026-06-15", "incidents": [
        incident("2026-01-20"), incident("2026-03-01"), incident("2026-06-01")]})
    assert result == {"met": True, "reasons": ["ASB_THREE_IN_SIX_MONTHS"], "occasions": 3,
                      "reported_in_last_month": 1, "hate_incidents": 0}


def test_same_day_incidents_are_one_occasion(check):
    result = check({"application_date": "2026-06-15", "incidents": [
        incident("2026-06-01"), incident("2026-06-01", "2026-06-02"), incident("2026-05-01")]})
    assert result["met"] is False and result["occasions"] == 2 and result["reasons"] == []


def test_no_recent_report_means_not_met(check):
    result = check({"application_date": "2026-06-15", "incidents": [
        incident("2026-01-20"), incident("2026-03-01"), incident("2026-05-14")]})
    assert result["met"] is False and result["reported_in_last_month"] == 0 and result["occasions"] == 3


def test_window_edges_are_inclusive(check):
    # D = 2026-06-15: six months back is 2025-12-15, one month back 2026-05-15.
    result = check({"application_date": "2026-06-15", "incidents": [
        incident("2025-12-15"), incident("2026-02-01"), incident("2026-05-15")]})
    assert result["met"] is True and result["occasions"] == 3 and result["reported_in_last_month"] == 1
    result = check({"application_date": "2026-06-15", "incidents": [
        incident("2025-12-14"), incident("2026-02-01"), incident("2026-05-15")]})
    assert result["met"] is False and result["occasions"] == 2


def test_month_end_clamping_in_a_leap_year(check):
    # D = 2024-08-31: six months back is 2024-02-29 (leap), one month back 2024-07-31.
    counted = check({"application_date": "2024-08-31", "incidents": [
        incident("2024-02-29"), incident("2024-05-01"), incident("2024-07-31")]})
    assert counted["met"] is True
    excluded = check({"application_date": "2024-08-31", "incidents": [
        incident("2024-02-28"), incident("2024-05-01"), incident("2024-07-31")]})
    assert excluded["occasions"] == 2 and excluded["met"] is False
    not_recent = check({"application_date": "2024-08-31", "incidents": [
        incident("2024-03-01"), incident("2024-05-01"), incident("2024-07-30")]})
    assert not_recent["reported_in_last_month"] == 0


def test_month_end_clamping_in_a_common_year(check):
    # D = 2023-08-31: six months back is 2023-02-28.
    result = check({"application_date": "2023-08-31", "incidents": [incident("2023-02-28", hate=True)]})
    assert result["met"] is True and result["reasons"] == ["HATE_INCIDENT"]
    result = check({"application_date": "2023-08-31", "incidents": [incident("2023-02-27", hate=True)]})
    assert result["met"] is False and result["hate_incidents"] == 0


def test_both_reasons_in_order(check):
    result = check({"application_date": "2026-06-15", "incidents": [
        incident("2026-01-20", hate=True), incident("2026-03-01"), incident("2026-06-01")]})
    assert result["reasons"] == ["ASB_THREE_IN_SIX_MONTHS", "HATE_INCIDENT"]
    assert result["hate_incidents"] == 1


def test_other_fields_are_ignored_and_empty_list_is_not_met(check):
    result = check({"application_date": "2026-06-15", "incidents": [
        {**incident("2026-06-01", hate=True), "description": "x", "reference": "R1"}]})
    assert result["met"] is True
    assert check({"application_date": "2026-06-15", "incidents": []})["met"] is False


@pytest.mark.parametrize("payload, words", [
    ({"application_date": "2026-02-30", "incidents": []}, "application_date"),
    ({"incidents": []}, "application_date"),
    ({"application_date": "2026-06-15"}, "incidents"),
    ({"application_date": "2026-06-15", "incidents": [{"reported_on": "2026-06-01"}]}, "incident 1: occurred_on"),
    ({"application_date": "2026-06-15", "incidents": [incident("2026-06-01"), incident("2026-13-01")]}, "incident 2: occurred_on"),
    ({"application_date": "2026-06-15", "incidents": [incident("2026-06-01", hate="yes")]}, "incident 1: hate"),
    ({"application_date": "2026-06-15", "incidents": [incident("2026-06-01", "2026-06-16")]}, "incident 1: reported_on"),
    ({"application_date": "2026-06-15", "incidents": [incident("2026-06-10", "2026-06-01")]}, "incident 1: occurred_on"),
    ("not json", "JSON"),
])
def test_invalid_input_exits_2_naming_incident_and_field(check, payload, words):
    assert words in check(payload, expect=2)


def test_threshold_check_sets_up_a_fresh_database(tmp_path, monkeypatch):
    monkeypatch.setenv("CASEREVIEW_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    result = CliRunner().invoke(main, ["threshold-check"], input=json.dumps(
        {"application_date": "2026-06-15", "incidents": [incident("2026-06-01", hate=True)]}))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["reasons"] == ["HATE_INCIDENT"]
