"""Apply a mapping to a CSV export: rows in, contract events and bad rows out.

A bad row (wrong number of fields, a timestamp in no known format, a value
the mapping does not know, an event the contract would reject) is reported
with its line number and the reason, and the import goes on. Every event is
checked with the pipeline's own decoder, so what the import lets through is
what the pipeline accepts.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TextIO

import orjson

from streams.contract.decode import Limits, decode_message
from streams.contract.event import SURVEY
from streams.replay.mapping import Condition, FieldSpec, Mapping, MappingError, Rule

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_BOOLEANS: Final = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}
_NUMBERS: Final = frozenset({"talk_seconds", "hold_seconds", "wrap_seconds"})
_INTEGERS: Final = frozenset({"csat", "nps", "ces"})


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    reason: str


@dataclass(slots=True)
class Imported:
    events: list[dict[str, Any]] = field(default_factory=list)  # `ts` in epoch ms, file order
    bad: list[BadRow] = field(default_factory=list)
    rows: int = 0


class _RowProblem(Exception):
    """What is wrong with one row for one rule (becomes a BadRow)."""


@dataclass(slots=True)
class _Row:
    line: int
    values: list[str]


class _Reader:
    """Column access with the mapping's missing markers, and its timestamp formats."""

    def __init__(self, mapping: Mapping, header: list[str]) -> None:
        self.mapping = mapping
        self.index = {name: position for position, name in enumerate(header)}
        self.width = len(header)
        self.times: dict[str, int] = {}

    def get(self, row: _Row, column: str) -> str | None:
        value = row.values[self.index[column]]
        return None if value in self.mapping.missing else value

    def timestamp(self, row: _Row, column: str) -> int:
        text = self.get(row, column)
        if text is None:
            raise _RowProblem(f"{column} is missing")
        ms = self.times.get(text)
        if ms is None:
            ms = self.times[text] = self._parse_time(text, column)
        return ms

    def _parse_time(self, text: str, column: str) -> int:
        for pattern in self.mapping.timestamp_formats:
            try:
                moment = datetime.strptime(text, pattern)
            except ValueError:
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=self.mapping.zone)
            return (moment - _EPOCH) // _MS
        formats = ", ".join(repr(p) for p in self.mapping.timestamp_formats)
        raise _RowProblem(f"{column}: {text!r} matches none of the timestamp formats ({formats})")


def import_csv(stream: TextIO, mapping: Mapping, limits: Limits) -> Imported:
    """All events of the export, in file order (rule order within a row)."""
    reader = csv.reader(stream, delimiter=mapping.delimiter)
    header = next(reader, None)
    if header is None:
        raise MappingError("source", "the file is empty (no header line)")
    columns = _Reader(mapping, header)
    for column, key in mapping.columns().items():
        if column not in columns.index:
            raise MappingError(key, f"column {column!r} is not in the file's header")
    imported = Imported()
    for group in _groups(_rows(reader, columns, imported), columns, imported):
        _apply(group, columns, limits, imported)
    return imported


def _rows(reader: Iterator[list[str]], columns: _Reader, imported: Imported) -> Iterator[_Row]:
    line = 2  # the header is line 1
    for values in reader:
        if not values:  # a blank line
            line = reader.line_num + 1  # type: ignore[attr-defined]
            continue
        imported.rows += 1
        if len(values) != columns.width:
            imported.bad.append(
                BadRow(line, f"{len(values)} fields where the header has {columns.width}")
            )
        else:
            yield _Row(line, values)
        line = reader.line_num + 1  # type: ignore[attr-defined]


def _groups(rows: Iterable[_Row], columns: _Reader, imported: Imported) -> Iterable[list[_Row]]:
    """Rows of one record together, in file order; every row alone when not grouped."""
    column = columns.mapping.group_by
    if column is None:
        return ([row] for row in rows)
    groups: dict[str, list[_Row]] = {}
    for row in rows:
        key = columns.get(row, column)
        if key is None:
            imported.bad.append(BadRow(row.line, f"{column} is missing"))
            continue
        groups.setdefault(key, []).append(row)
    return groups.values()


def _apply(group: list[_Row], columns: _Reader, limits: Limits, imported: Imported) -> None:
    fired: set[int] = set()
    previous: _Row | None = None
    for row in group:
        for rule in columns.mapping.rules:
            if rule.once and rule.number in fired:
                continue
            try:
                if not _holds(rule.when, row, previous, columns):
                    continue
                if rule.once:
                    fired.add(rule.number)
                imported.events.append(_event(rule, row, columns, limits))
            except _RowProblem as problem:
                imported.bad.append(
                    BadRow(row.line, f"rule {rule.number} ({rule.type}): {problem}")
                )
        previous = row


def _holds(when: Condition, row: _Row, previous: _Row | None, columns: _Reader) -> bool:
    if when.first and previous is not None:
        return False
    if when.column is None:
        return True
    value = columns.get(row, when.column)
    if value is None:
        return False
    if when.test == "equals" or when.test == "in":
        return value in when.values
    if when.test == "not_in":
        return value not in when.values
    before = None if previous is None else columns.get(previous, when.column)
    if when.test == "becomes":
        return value == when.values[0] and before != value
    # increases
    if previous is None or before is None:
        return False
    return _rank(value, when, columns) > _rank(before, when, columns)


def _rank(value: str, when: Condition, columns: _Reader) -> float:
    if when.order:
        if value not in when.order:
            raise _RowProblem(f"{when.column}: {value!r} is not in when.order")
        return when.order.index(value)
    try:
        return float(value)
    except ValueError:
        raise _RowProblem(f"{when.column}: {value!r} is not a number") from None


def _event(rule: Rule, row: _Row, columns: _Reader, limits: Limits) -> dict[str, Any]:
    ts = columns.timestamp(row, rule.ts)
    fields: dict[str, Any] = {}
    for spec in (*columns.mapping.fields, *rule.fields):
        value = _value(spec, row, columns)
        if value is not None:
            fields[spec.name] = value
    interaction = fields.get("interaction_id")
    if interaction is None:
        raise _RowProblem("interaction_id is missing")
    event_id = f"{interaction}:{row.line}:{rule.number}"
    event = {"event_id": event_id, "type": rule.type, "ts": ts, **fields}
    channel = None if rule.type == SURVEY else event.get("channel")
    decoded = decode_message(orjson.dumps(event), channel, limits)
    if decoded.rejections:
        rejection = decoded.rejections[0]
        raise _RowProblem(f"{rejection.reason}: {rejection.detail}")
    return event


def _value(spec: FieldSpec, row: _Row, columns: _Reader) -> Any:
    if spec.column is None:
        return spec.constant
    text = columns.get(row, spec.column)
    if text is None:
        return spec.default
    if spec.values is not None:
        if text not in spec.values:
            raise _RowProblem(f"{spec.key}: {text!r} is not one of the mapped values")
        return spec.values[text]
    return _typed(spec.name, text)


def _typed(name: str, text: str) -> Any:
    """CSV text -> the type the contract gives the field."""
    try:
        if name == "resolved":
            return _BOOLEANS[text.strip().lower()]
        if name in _NUMBERS:
            return float(text)
        if name in _INTEGERS:
            return int(text)
    except (KeyError, ValueError):
        raise _RowProblem(f"{name}: {text!r} is not a valid {name} value") from None
    return text
