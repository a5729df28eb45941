"""A stage's Store over a Faust table, with commits that survive a crash whole."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, MutableMapping
from typing import Any, Protocol

import orjson

MARK = "\x00commit|"
"""Key prefix of a partition's last commit record in a table (never a stage key)."""


class Changelogged(Protocol):
    """What a store needs of a Faust table."""

    @property
    def data(self) -> MutableMapping[str, Any]: ...

    def send_changelog(
        self, partition: int | None, key: Any, value: Any, value_serializer: Any = None
    ) -> Any: ...


class TableStore:
    """A stage's Store over a Faust table: the table's dict holds live objects
    (or the bytes read back from the changelog), the changelog gets the bytes
    when the stage commits, the last write of each key only.

    A commit with marks is atomic per partition without Kafka transactions: it
    first writes one record holding the partition's writes and its mark, then
    the writes themselves. A partition's changelog keeps the order of what was
    sent, so after a crash either that record is missing (and so are the writes
    after it) or `restore` finds it and completes the writes the crash cut off."""

    def __init__(self, table: Changelogged) -> None:
        self.table = table
        self.pending: dict[int, dict[str, bytes | None]] = defaultdict(dict)

    def get(self, key: str) -> Any:
        return self.table.data.get(key)

    def put(self, partition: int, key: str, value: Any, wire: bytes) -> None:
        self.table.data[key] = value
        self.pending[partition][key] = wire

    def delete(self, partition: int, key: str) -> None:
        self.table.data.pop(key, None)
        self.pending[partition][key] = None

    def scan(self) -> Iterable[str]:
        return [key for key in self.table.data if not key.startswith(MARK)]

    def largest_commit(self) -> int:
        """Bytes of the largest partition's writes waiting for the next commit."""
        return max(
            (sum(len(w or b"") for w in writes.values()) for writes in self.pending.values()),
            default=0,
        )

    def commit(self, marks: dict[int, Any] | None = None) -> None:
        pending, self.pending = self.pending, defaultdict(dict)
        for partition in sorted(set(pending) | set(marks or ())):
            writes = pending.get(partition, {})
            if marks is not None and partition in marks:
                record = orjson.dumps(
                    {
                        "mark": marks[partition],
                        "w": [
                            [key, None if wire is None else orjson.Fragment(wire)]
                            for key, wire in writes.items()
                        ],
                    }
                )
                self.table.data[f"{MARK}{partition}"] = record
                self.table.send_changelog(partition, f"{MARK}{partition}", record)
            for key, wire in writes.items():
                if wire is None:
                    self.table.send_changelog(partition, key, None, value_serializer="raw")
                else:
                    self.table.send_changelog(partition, key, wire)

    def restore(self, partition: int) -> Any:
        record = self.table.data.get(f"{MARK}{partition}")
        if record is None:
            return None
        commit = orjson.loads(record)
        for key, wire in commit["w"]:
            if wire is None:
                self.table.data.pop(key, None)
            else:
                self.table.data[key] = orjson.dumps(wire)
        return commit["mark"]
