"""Mapping files: how the rows of a CSV export become contract events, declared in TOML.

A mapping says which columns feed which event fields (directly, through a
table of values, or as a constant), how timestamps are written and in which
time zone, and which rows mean which event type. Rows can be read one by one
(an export with one row per event) or as the history of one record, grouped
by a column (an audit log with one row per update), where a rule can look
at the row before: "the state becomes Resolved", "the reassignment count
increases".

Loading checks every key and reports the first problem as `MappingError`
naming it, as scenario and configuration files do.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping as MappingType
from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.contract.event import EVENT_TYPES, SURVEY

MAPPING_DIR: Final = Path(__file__).parent / "mappings"
TESTS: Final = ("equals", "in", "not_in", "becomes", "increases")
"""Row conditions: the column's value is / is one of / is none of / has just become
(differs from the row before) the given values, or is larger than in the row before."""
_GROUPED_ONLY: Final = frozenset({"becomes", "increases"})


class MappingError(ValueError):
    """A bad mapping value: names the key and the problem."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One event field: from a column (optionally through `values`, with a `default`
    for when the column is missing), or a constant."""

    name: str
    key: str  # where the mapping declares it, for messages
    column: str | None = None
    constant: Any = None
    values: MappingType[str, Any] | None = None
    default: Any = None


@dataclass(frozen=True, slots=True)
class Condition:
    first: bool = False  # only the first row of a group
    column: str | None = None
    test: str | None = None  # one of TESTS
    values: tuple[str, ...] = ()
    order: tuple[str, ...] = ()  # `increases` by rank in this list instead of by number


@dataclass(frozen=True, slots=True)
class Rule:
    """Rows that satisfy `when` make one event of `type`, at the time in column `ts`."""

    number: int  # 1-based position in the file, part of the event ids
    type: str
    when: Condition
    once: bool  # at most one event per group
    ts: str
    fields: tuple[FieldSpec, ...]


@dataclass(frozen=True, slots=True)
class Mapping:
    name: str
    delimiter: str
    encoding: str
    missing: frozenset[str]
    group_by: str | None
    zone: tzinfo
    timestamp_formats: tuple[str, ...]
    fields: tuple[FieldSpec, ...]  # on every event
    rules: tuple[Rule, ...]

    def columns(self) -> dict[str, str]:
        """Every column the mapping reads -> the key that first names it."""
        used: dict[str, str] = {}
        if self.group_by:
            used[self.group_by] = "source.group_by"
        for spec in self.fields:
            if spec.column:
                used.setdefault(spec.column, spec.key)
        for rule in self.rules:
            used.setdefault(rule.ts, f"rules[{rule.number}].ts")
            if rule.when.column:
                used.setdefault(rule.when.column, f"rules[{rule.number}].when.column")
            for spec in rule.fields:
                if spec.column:
                    used.setdefault(spec.column, spec.key)
        return used


def available() -> list[str]:
    """Names of the mappings shipped in the repository."""
    return sorted(path.stem for path in MAPPING_DIR.glob("*.toml"))


def load(name_or_path: str) -> Mapping:
    """A shipped mapping by name (`servicenow-incidents`), or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix != ".toml" and not path.exists():
        path = MAPPING_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            known = ", ".join(available())
            raise MappingError("mapping", f"no mapping {name_or_path!r} (shipped: {known})")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError("mapping", f"file {name_or_path!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(path.name, f"not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(path.name, f"cannot read: {exc}") from None
    return parse(raw, path.stem)


def _check_keys(table: MappingType[str, Any], prefix: str, allowed: frozenset[str]) -> None:
    for key in table:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise MappingError(f"{prefix}.{key}", f"unknown key (known: {known})")


def _table(value: object, key: str) -> MappingType[str, Any]:
    if not isinstance(value, dict):
        raise MappingError(key, f"must be a table, got {value!r}")
    return value


def _text(value: object, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise MappingError(key, f"expected a non-empty string, got {value!r}")
    return value


def _texts(value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise MappingError(key, f"expected a non-empty list of strings, got {value!r}")
    return tuple(_text(item, f"{key}[{index}]") for index, item in enumerate(value))


def _scalar(value: object, key: str) -> str | int | float | bool:
    if not isinstance(value, str | int | float | bool):
        raise MappingError(key, f"expected a string, number or boolean, got {value!r}")
    return value


def _field(name: str, value: object, key: str) -> FieldSpec:
    """`"column"`, `{ column = "...", values = {...}, default = ... }` or `{ value = ... }`."""
    if isinstance(value, str):
        return FieldSpec(name, key, column=_text(value, key))
    table = _table(value, key)
    _check_keys(table, key, frozenset({"column", "values", "default", "value"}))
    if "value" in table:
        if len(table) > 1:
            raise MappingError(key, "a constant `value` cannot be combined with a column")
        return FieldSpec(name, key, constant=_scalar(table["value"], f"{key}.value"))
    if "column" not in table:
        raise MappingError(key, "needs a `column` (or a constant `value`)")
    values = None
    if "values" in table:
        values = dict(_table(table["values"], f"{key}.values"))
        if not values:
            raise MappingError(f"{key}.values", "must map at least one value")
    default = _scalar(table["default"], f"{key}.default") if "default" in table else None
    column = _text(table["column"], f"{key}.column")
    return FieldSpec(name, key, column=column, values=values, default=default)


def _fields(value: object, key: str) -> tuple[FieldSpec, ...]:
    table = _table(value, key)
    return tuple(_field(name, spec, f"{key}.{name}") for name, spec in table.items())


def _condition(value: object, key: str, grouped: bool) -> Condition:
    table = _table(value, key)
    _check_keys(table, key, frozenset({"first", "column", "order", *TESTS}))
    first = table.get("first", False)
    if not isinstance(first, bool):
        raise MappingError(f"{key}.first", f"expected true or false, got {first!r}")
    if first and not grouped:
        raise MappingError(f"{key}.first", "needs rows grouped by a column (source.group_by)")
    tests = [name for name in TESTS if name in table]
    if "column" not in table:
        if tests or "order" in table:
            raise MappingError(key, f"`{(tests or ['order'])[0]}` needs a `column`")
        if not first:
            raise MappingError(
                key, f"needs `first = true` or a `column` with one of {', '.join(TESTS)}"
            )
        return Condition(first=True)
    if len(tests) != 1:
        raise MappingError(key, f"needs exactly one of {', '.join(TESTS)} with `column`")
    test = tests[0]
    if test in _GROUPED_ONLY and not grouped:
        raise MappingError(f"{key}.{test}", "needs rows grouped by a column (source.group_by)")
    column = _text(table["column"], f"{key}.column")
    order: tuple[str, ...] = ()
    if "order" in table:
        if test != "increases":
            raise MappingError(f"{key}.order", "only applies to `increases`")
        order = _texts(table["order"], f"{key}.order")
    if test == "increases":
        if table[test] is not True:
            raise MappingError(f"{key}.increases", "expected true")
        values: tuple[str, ...] = ()
    elif test in ("equals", "becomes"):
        values = (_text(table[test], f"{key}.{test}"),)
    else:
        values = _texts(table[test], f"{key}.{test}")
    return Condition(first, column, test, values, order)


def _rule(value: object, number: int, grouped: bool) -> Rule:
    key = f"rules[{number}]"
    table = _table(value, key)
    _check_keys(table, key, frozenset({"type", "when", "once", "ts", "fields"}))
    kind = table.get("type")
    if kind not in EVENT_TYPES:
        raise MappingError(f"{key}.type", f"expected one of {', '.join(EVENT_TYPES)}, got {kind!r}")
    for required in ("when", "ts"):
        if required not in table:
            raise MappingError(f"{key}.{required}", "is required")
    once = table.get("once", False)
    if not isinstance(once, bool):
        raise MappingError(f"{key}.once", f"expected true or false, got {once!r}")
    if once and not grouped:
        raise MappingError(f"{key}.once", "needs rows grouped by a column (source.group_by)")
    return Rule(
        number=number,
        type=kind,
        when=_condition(table["when"], f"{key}.when", grouped),
        once=once,
        ts=_text(table["ts"], f"{key}.ts"),
        fields=_fields(table.get("fields", {}), f"{key}.fields"),
    )


def _zone(value: object) -> tzinfo:
    name = _text(value, "source.timezone")
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError("source.timezone", f"unknown time zone {name!r}") from None


def parse(raw: MappingType[str, Any], name: str = "mapping") -> Mapping:
    """A mapping from its TOML document (already parsed)."""
    _check_keys(raw, "mapping", frozenset({"source", "event", "rules"}))
    source = _table(raw.get("source", {}), "source")
    _check_keys(
        source,
        "source",
        frozenset(
            {"delimiter", "encoding", "missing", "group_by", "timezone", "timestamp_formats"}
        ),
    )
    delimiter = source.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise MappingError("source.delimiter", f"expected one character, got {delimiter!r}")
    encoding = _text(source.get("encoding", "utf-8"), "source.encoding")
    try:
        "".encode(encoding)
    except LookupError:
        raise MappingError("source.encoding", f"unknown encoding {encoding!r}") from None
    missing = source.get("missing", [""])
    if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
        raise MappingError("source.missing", f"expected a list of strings, got {missing!r}")
    group_by = source.get("group_by")
    grouped = group_by is not None
    if "timestamp_formats" not in source:
        raise MappingError("source.timestamp_formats", "is required, e.g. ['%Y-%m-%d %H:%M:%S']")
    rules = raw.get("rules")
    if not isinstance(rules, list) or not rules:
        raise MappingError("rules", "at least one [[rules]] table is required")
    fields = _fields(raw.get("event", {}), "event")
    if not any(spec.name == "interaction_id" for spec in fields):
        raise MappingError("event.interaction_id", "is required: which column identifies a contact")
    parsed = tuple(_rule(rule, number, grouped) for number, rule in enumerate(rules, 1))
    if not any(spec.name == "channel" for spec in fields):
        for rule in parsed:
            if rule.type != SURVEY and not any(spec.name == "channel" for spec in rule.fields):
                raise MappingError(
                    "event.channel", f"is required (or in the fields of rules[{rule.number}])"
                )
    return Mapping(
        name=name,
        delimiter=delimiter,
        encoding=encoding,
        missing=frozenset(missing),
        group_by=_text(group_by, "source.group_by") if grouped else None,
        zone=_zone(source.get("timezone", "UTC")),
        timestamp_formats=_texts(source["timestamp_formats"], "source.timestamp_formats"),
        fields=fields,
        rules=parsed,
    )
