"""A stage's Store over a Faust table, with commits that survive a crash whole."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, MutableMapping
from typing import Any, Protocol

import orjson

from streams.pipeline.right_size import right_sized

MARK = "\x00commit|"
"""Key prefix of a partition's last commit record in a table (never a stage key)."""
PART_BYTES = 512 * 1024
"""A commit's writes beyond this go into part records, each within Kafka's
default largest message (1 MiB): a replay can change every board bucket in
one commit."""


class Changelogged(Protocol):
    """What a store needs of a Faust table."""

    @property
    def data(self) -> MutableMapping[str, Any]: ...

    def send_changelog(
        self, partition: int | None, key: Any, value: Any, value_serializer: Any = None
    ) -> Any: ...


class TableStore:
    """A stage's Store over a Faust table: the table's dict holds live objects,
    or bytes (those a stage puts as bytes, and those read back from the
    changelog), the changelog gets the bytes when the stage commits, the last
    write of each key only.

    A commit with marks is atomic per partition without Kafka transactions: it
    first writes one record holding the partition's writes and its mark, then
    the writes themselves. A partition's changelog keeps the order of what was
    sent, so after a crash either that record is missing (and so are the writes
    after it) or `restore` finds it and completes the writes the crash cut off.
    A commit larger than `part_bytes` puts its writes in part records under
    keys of its own, written before the record that names them; the previous
    commit's parts are deleted after it."""

    def __init__(self, table: Changelogged, part_bytes: int = PART_BYTES) -> None:
        self.table = table
        self.part_bytes = part_bytes
        self.pending: dict[int, dict[str, bytes | None]] = defaultdict(dict)
        self.pending_bytes: dict[int, int] = defaultdict(int)
        """Per partition, the bytes of `pending`: asked after every batch."""
        self.parts: dict[int, list[str]] = {}
        """Per partition, the part keys of its last commit."""

    def get(self, key: str) -> Any:
        return self.table.data.get(key)

    def put(self, partition: int, key: str, value: Any, wire: bytes) -> None:
        self.table.data[key] = value
        self._pend(partition, key, right_sized(wire))

    def put_bytes(self, partition: int, key: str, wire: bytes) -> None:
        wire = right_sized(wire)
        self.table.data[key] = wire
        self._pend(partition, key, wire)

    def delete(self, partition: int, key: str) -> None:
        self.table.data.pop(key, None)
        self._pend(partition, key, None)

    def _pend(self, partition: int, key: str, wire: bytes | None) -> None:
        writes = self.pending[partition]
        self.pending_bytes[partition] += len(wire or b"") - len(writes.get(key) or b"")
        writes[key] = wire

    def scan(self) -> Iterable[str]:
        return [key for key in self.table.data if not key.startswith(MARK)]

    def largest_commit(self) -> int:
        """Bytes of the largest partition's writes waiting for the next commit."""
        return max(self.pending_bytes.values(), default=0)

    def commit(self, marks: dict[int, Any] | None = None) -> None:
        pending, self.pending = self.pending, defaultdict(dict)
        self.pending_bytes.clear()
        for partition in sorted(set(pending) | set(marks or ())):
            writes = pending.get(partition, {})
            if marks is not None and partition in marks:
                self._commit_record(partition, marks[partition], writes)
            for key, wire in writes.items():
                if wire is None:
                    self._tombstone(partition, key)
                else:
                    self.table.send_changelog(partition, key, wire)

    def _commit_record(self, partition: int, mark: Any, writes: dict[str, bytes | None]) -> None:
        chunks: list[list[Any]] = [[]]
        size = 0
        for key, wire in writes.items():
            if size >= self.part_bytes:
                chunks.append([])
                size = 0
            chunks[-1].append([key, None if wire is None else orjson.Fragment(wire)])
            size += len(key) + len(wire or b"")
        record: dict[str, Any] = {"mark": mark, "w": chunks[0]}
        old_parts, parts = self.parts.get(partition, []), []
        if len(chunks) > 1:
            commit_id = uuid.uuid4().hex
            for n, chunk in enumerate(chunks):
                part = f"{MARK}{partition}|{commit_id}|{n}"
                self._send(partition, part, orjson.dumps({"w": chunk}))
                parts.append(part)
            record = {"mark": mark, "parts": parts}
        self._send(partition, f"{MARK}{partition}", orjson.dumps(record))
        self.parts[partition] = parts
        for part in old_parts:
            self.table.data.pop(part, None)
            self._tombstone(partition, part)

    def _send(self, partition: int, key: str, record: bytes) -> None:
        record = right_sized(record)
        self.table.data[key] = record
        self.table.send_changelog(partition, key, record)

    def _tombstone(self, partition: int, key: str) -> None:
        self.table.send_changelog(partition, key, None, value_serializer="raw")

    def restore(self, partition: int) -> Any:
        record = self.table.data.get(f"{MARK}{partition}")
        if record is None:
            return None
        commit = orjson.loads(record)
        self.parts[partition] = commit.get("parts", [])
        if self.parts[partition]:
            commit["w"] = [
                write
                for part in self.parts[partition]
                for write in orjson.loads(self.table.data[part])["w"]
            ]
        for key, wire in commit["w"]:
            if wire is None:
                self.table.data.pop(key, None)
            else:
                self.table.data[key] = right_sized(orjson.dumps(wire))
        return commit["mark"]
