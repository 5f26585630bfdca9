"""The workbook and the alert read only events and fields the code actually logs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.telemetry import EVENT_FIELDS, EVENT_PREFIX, format_event

INFRA = Path(__file__).resolve().parents[2] / "infra"
QUERIES = INFRA / "monitoring" / "queries"
OBSERVABILITY = INFRA / "monitoring" / "observability.bicep"
OUTCOMES = {"succeeded", "already_current", "failed", "timed_out", "cancelled", "rejected"}
Parse = Callable[[Path], dict[str, Any]]


def kql_code(text: str) -> str:
    """The query without its // comment lines."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


def query_problems(text: str) -> list[str]:
    """What a query reads that the telemetry contract does not declare (empty = fine)."""
    code = kql_code(text)
    problems = []
    if re.search(r"payload\s*\[", code):
        problems.append("use payload.<field>, not payload[...], so fields can be checked")
    events = set(re.findall(r"\b((?:update|event)\.[a-z]+)\b", code))
    if not events:
        problems.append("the query names no event")
    unknown_events = events - set(EVENT_FIELDS)
    problems += [f"unknown event {e}" for e in sorted(unknown_events)]
    allowed = {"event"}
    for event in events & set(EVENT_FIELDS):
        allowed.update(EVENT_FIELDS[event])
    fields = set(re.findall(r"\bpayload\.([A-Za-z_]\w*)", code))
    problems += [f"field {f} is not logged by {sorted(events)}" for f in sorted(fields - allowed)]
    if f'message startswith "{EVENT_PREFIX} ' not in code:
        problems.append(f'filter with: message startswith "{EVENT_PREFIX} ..."')
    if 'parse_json(substring(message, indexof(message, "{")))' not in code:
        problems.append("parse the JSON after the first '{' of the message")
    return problems


def all_queries() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(QUERIES.glob("*.kql"))}


def test_every_query_uses_only_logged_events_and_fields():
    """Each .kql reads only events in EVENT_FIELDS and fields declared for those events."""
    queries = all_queries()
    assert len(queries) >= 6
    problems = {name: query_problems(text) for name, text in queries.items()}
    assert not {k: v for k, v in problems.items() if v}


def test_the_checker_catches_undeclared_fields_and_events():
    """A query reading an undeclared field or event is reported (the check can fail)."""
    good = all_queries()["update-failures.kql"]
    assert query_problems(good) == []
    assert query_problems(good.replace("payload.errorCategory", "payload.clientSecret"))
    assert query_problems(good.replace('"update.completed"', '"update.finished"'))
    assert query_problems(good.replace("payload.transactionId", 'payload["transactionId"]'))
    phase_only = 'traces | where message startswith "catalog-updater update.phase "'
    parse = '| extend payload = parse_json(substring(message, indexof(message, "{")))'
    assert query_problems(f"{phase_only}\n{parse}\n| project payload.outcome")


def test_outcome_literals_are_the_result_vocabulary():
    """Outcome values compared in the queries are the app's result vocabulary."""
    for name, text in all_queries().items():
        code = kql_code(text)
        for clause in re.findall(r"outcome[^\n]*", code):
            for literal in re.findall(r'"([a-z_]+)"', clause):
                if literal not in {"started"}:
                    assert literal in OUTCOMES, f"{name}: {literal}"


def test_workbook_and_alert_load_every_query_file(parse_bicep: Parse):
    """observability.bicep loads each .kql file; the alert uses failed or timed_out updates."""
    parsed = parse_bicep(OBSERVABILITY)
    text = OBSERVABILITY.read_text()
    loaded = set(re.findall(r"loadTextContent\('queries/([^']+)'\)", text))
    assert loaded == set(all_queries())
    types = {r["type"] for r in parsed["resources"].values()}
    assert {"Microsoft.Insights/workbooks", "Microsoft.Insights/scheduledQueryRules"} <= types
    alert = kql_code((QUERIES / "alert-failed-updates.kql").read_text())
    assert '"update.completed"' in alert
    assert re.search(r'outcome\)\s+in\s+\("failed",\s*"timed_out"\)', alert)


def test_the_parse_rule_recovers_every_field_the_code_logs():
    """JSON after the first '{' of a real log line holds the event and all its fields."""
    for event, fields in EVENT_FIELDS.items():
        values = {name: f"v{{{index}}}" for index, name in enumerate(fields)}
        message = format_event(event, **values)
        assert message.startswith(f"{EVENT_PREFIX} {event} ")
        payload = json.loads(message[message.index("{") :])
        assert payload == {"event": event, **values}


def test_in_flight_query_strips_the_child_suffix_the_orchestrator_uses():
    """The in-flight query recognises child ids exactly as the orchestrator names them."""
    from shared.orchestration import CHILD_SUFFIX, child_instance_id

    code = kql_code(all_queries()["updates-in-flight.kql"])
    patterns = set(re.findall(r'@"([^"]+)"', code))
    assert patterns == {re.escape(CHILD_SUFFIX) + r"\d+$"}
    (pattern,) = patterns
    assert re.search(pattern, child_instance_id("upd-abc", 0))
    assert re.sub(pattern, "", child_instance_id("upd-abc", 12)) == "upd-abc"
    assert not re.search(pattern, "upd-abc")
