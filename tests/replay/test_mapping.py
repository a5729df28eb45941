"""Mapping files and the CSV import: every mistake named, bad rows reported and skipped."""

import io
import tomllib
from datetime import UTC, datetime

import pytest

from streams.contract.decode import Limits
from streams.replay.importer import BadRow, import_csv
from streams.replay.mapping import MappingError, available, load, parse

TICKETS = """
[source]
missing = ["?", ""]
group_by = "id"
timezone = "Europe/Paris"
timestamp_formats = ["%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M"]

[event]
interaction_id = "id"
customer_id = "who"
channel = { value = "email" }

[[rules]]
type = "contact.started"
when = { first = true }
ts = "at"
[rules.fields]
queue = { column = "team", default = "triage" }
priority = { column = "prio", values = { P1 = "urgent", P2 = "normal" } }

[[rules]]
type = "agent.responded"
when = { column = "state", not_in = ["new"] }
once = true
ts = "at"
fields = { agent_id = "by" }

[[rules]]
type = "contact.transferred"
when = { column = "team", becomes = "level2" }
ts = "at"

[[rules]]
type = "contact.escalated"
when = { column = "prio", increases = true, order = ["P2", "P1"] }
ts = "at"

[[rules]]
type = "contact.ended"
when = { column = "state", equals = "solved" }
ts = "at"
fields = { resolved = "ok", talk_seconds = "work" }
"""

HEADER = "id,who,team,prio,state,by,at,ok,work\n"


def imported(rows: str, mapping_text: str = TICKETS):
    mapping = parse(tomllib.loads(mapping_text))
    return import_csv(io.StringIO(HEADER + rows), mapping, Limits())


def ms(text: str, zone=UTC) -> int:
    return round(datetime.fromisoformat(text).replace(tzinfo=zone).timestamp() * 1000)


def test_a_grouped_history_becomes_a_contact_lifecycle():
    result = imported(
        "T1,ann,,P2,new,?,2026-03-29 01:30:00,?,?\n"  # Paris: UTC+1 before 02:00 ...
        "T1,ann,level1,P2,open,bob,2026-03-29 03:15:00,?,?\n"  # ... UTC+2 after the switch
        "T2,cid,level1,P2,open,eve,29.03.2026 04:00,?,?\n"
        "T1,ann,level2,P1,open,bob,2026-03-29 04:00:00,?,?\n"
        "T1,ann,level2,P1,solved,dan,2026-03-29 05:00:00,TRUE,310.5\n"
    )
    assert result.bad == []
    assert result.rows == 5
    t1 = [(e["type"], e["ts"]) for e in result.events if e["interaction_id"] == "T1"]
    assert t1 == [
        ("contact.started", ms("2026-03-29T00:30:00")),
        ("agent.responded", ms("2026-03-29T01:15:00")),
        ("contact.transferred", ms("2026-03-29T02:00:00")),
        ("contact.escalated", ms("2026-03-29T02:00:00")),
        ("contact.ended", ms("2026-03-29T03:00:00")),
    ]
    started, responded = result.events[0], result.events[1]
    assert started == {
        "event_id": "T1:2:1",
        "type": "contact.started",
        "ts": ms("2026-03-29T00:30:00"),
        "interaction_id": "T1",
        "customer_id": "ann",
        "channel": "email",
        "queue": "triage",  # the default: the first row has no team
        "priority": "normal",
    }
    assert responded["agent_id"] == "bob" and responded["event_id"] == "T1:3:2"
    ended = result.events[4]
    assert ended["resolved"] is True and ended["talk_seconds"] == 310.5
    t2 = [e["type"] for e in result.events if e["interaction_id"] == "T2"]
    assert t2 == ["contact.started", "agent.responded"]  # its first row is its start


def test_bad_rows_are_reported_with_line_and_reason_and_the_rest_goes_on():
    result = imported(
        "T1,ann,l1,P2,new,?,2026-03-01 10:00:00,?,?\n"  # line 2
        "T1,ann,l1,P3,open,bob,2026-03-01 10:05:00,?,?\n"  # P3: not in the escalation order
        "T2,ann,l1\n"  # 3 fields
        "?,ann,l1,P2,new,?,2026-03-01 11:00:00,?,?\n"  # no id
        "T3,bea,l1,P9,new,?,2026-03-01 12:00:00,?,?\n"  # P9: no priority mapping
        "T1,ann,l1,P3,solved,bob,2026-03-01 12:00:00,maybe,?\n"  # resolved: not a boolean
        "T4,,l1,P2,new,?,2026-03-01 13:00:00,?,?\n"  # no customer on a start
        "T5,cid,l1,P2,open,eve,yesterday,?,?\n"  # no timestamp format fits
        "T1,ann,l1,P3,solved,bob,2026-03-01 13:30:00,TRUE,?\n"  # line 10
    )
    no_format = "at: 'yesterday' matches none of the timestamp formats " + (
        "('%Y-%m-%d %H:%M:%S', '%d.%m.%Y %H:%M')"
    )
    assert sorted(result.bad, key=lambda bad: bad.line) == [
        BadRow(3, "rule 4 (contact.escalated): prio: 'P3' is not in when.order"),
        BadRow(4, "3 fields where the header has 9"),
        BadRow(5, "id is missing"),
        BadRow(
            6,
            "rule 1 (contact.started): rules[1].fields.priority: 'P9' is not one of the mapped "
            "values",
        ),
        BadRow(7, "rule 4 (contact.escalated): prio: 'P3' is not in when.order"),
        BadRow(7, "rule 5 (contact.ended): resolved: 'maybe' is not a valid resolved value"),
        BadRow(8, "rule 1 (contact.started): missing_field: customer_id is required"),
        BadRow(
            9,
            f"rule 1 (contact.started): {no_format}",
        ),
        BadRow(
            9,
            f"rule 2 (agent.responded): {no_format}",
        ),
        BadRow(10, "rule 4 (contact.escalated): prio: 'P3' is not in when.order"),
    ]
    kept = [(e["interaction_id"], e["type"], e["event_id"]) for e in result.events]
    assert kept == [
        ("T1", "contact.started", "T1:2:1"),
        ("T1", "agent.responded", "T1:3:2"),
        ("T1", "contact.ended", "T1:10:5"),
    ]
    assert result.rows == 9


def test_rows_without_grouping_are_one_event_each():
    flat = """
[source]
timestamp_formats = ["%Y-%m-%dT%H:%M:%S%z"]
[event]
interaction_id = "call"
channel = { value = "call" }
[[rules]]
type = "contact.started"
when = { column = "what", equals = "offered" }
ts = "when"
fields = { customer_id = "caller", queue = "line" }
[[rules]]
type = "contact.abandoned"
when = { column = "what", in = ["hangup", "timeout"] }
ts = "when"
"""
    mapping = parse(tomllib.loads(flat))
    rows = (
        "call,caller,line,what,when\n"
        "c1,+33 1,sales,offered,2026-03-01T10:00:00+0100\n"
        "\n"
        "c1,+33 1,sales,timeout,2026-03-01T10:02:30+0100\n"
        "c2,+33 2,sales,transfer,2026-03-01T10:03:00+0100\n"
    )
    result = import_csv(io.StringIO(rows), mapping, Limits())
    assert result.bad == []
    assert [(e["type"], e["ts"], e["event_id"]) for e in result.events] == [
        ("contact.started", ms("2026-03-01T09:00:00"), "c1:2:1"),
        ("contact.abandoned", ms("2026-03-01T09:02:30"), "c1:4:2"),  # line 3 is blank
    ]


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        (("[source]", "[source]\ncolour = 1"), "source.colour", "unknown key"),
        (('timezone = "Europe/Paris"', 'timezone = "Mars/Olympus"'), "source.timezone", "unknown"),
        (('group_by = "id"\n', ""), "rules[1].when.first", "needs rows grouped"),
        (
            ('type = "contact.started"', 'type = "contact.begun"'),
            "rules[1].type",
            "expected one of",
        ),
        (('interaction_id = "id"\n', ""), "event.interaction_id", "is required"),
        (('channel = { value = "email" }\n', ""), "event.channel", "is required"),
        (("not_in = [", "in_not = ["), "rules[2].when.in_not", "unknown key"),
        (('ts = "at"\nfields = { agent_id', "fields = { agent_id"), "rules[2].ts", "is required"),
        (
            (', order = ["P2", "P1"]', ', order = ["P2", "P1"], equals = "P1"'),
            "rules[4].when",
            "exactly one",
        ),
        (("increases = true", "increases = 1"), "rules[4].when.increases", "expected true"),
        (
            ('equals = "solved"', 'equals = "solved", order = ["a"]'),
            "rules[5].when.order",
            "only applies",
        ),
        (
            ('default = "triage"', 'default = ["triage"]'),
            "rules[1].fields.queue.default",
            "expected a",
        ),
        (("once = true", 'once = "yes"'), "rules[2].once", "true or false"),
    ],
)
def test_a_bad_mapping_names_its_key(change, key, problem):
    old, new = change
    assert old in TICKETS
    with pytest.raises(MappingError) as caught:
        parse(tomllib.loads(TICKETS.replace(old, new, 1)))
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_a_column_the_file_lacks_stops_the_import_with_the_mapping_key():
    mapping = parse(tomllib.loads(TICKETS))
    with pytest.raises(MappingError) as caught:
        import_csv(io.StringIO("id,who,team,prio,state,by,time,ok,work\n"), mapping, Limits())
    assert (caught.value.key, caught.value.problem) == (
        "rules[1].ts",
        "column 'at' is not in the file's header",
    )
    with pytest.raises(MappingError, match="the file is empty"):
        import_csv(io.StringIO(""), mapping, Limits())


def test_shipped_mappings_load_by_name():
    assert available() == ["servicenow-incidents"]
    mapping = load("servicenow-incidents")
    assert mapping.group_by == "number" and [r.type for r in mapping.rules][:2] == [
        "contact.started",
        "agent.responded",
    ]
    with pytest.raises(MappingError, match="shipped: servicenow-incidents"):
        load("zendesk")
