"""The topics a deployment's workers share besides its inputs and outputs: the
stages' repartition topics and the tables' changelogs.

`cc-kpi worker` creates all of them before Faust starts
(streams.cli.ensure_topics). A consumer group formed while one is missing gets
no partitions of it, and Faust creates its changelogs only as it starts, while
its consumer is already joining the group ("Ignoring missing topic" in the
worker's log)."""

from __future__ import annotations

MAX_RECORD_BYTES = 16 * 1024 * 1024

REPARTITIONS = ("by-interaction", "by-customer", "kpi-deltas")

TABLES: dict[str, dict[str, str]] = {
    "interactions": {},
    # A board or customers commit record (see TableStore.commit) holds up to
    # PART_BYTES of writes and at least one: room for a large one.
    "customers": {"max.message.bytes": str(MAX_RECORD_BYTES)},
    "board": {"max.message.bytes": str(MAX_RECORD_BYTES)},
    "sla": {},
}
"""Each table and the settings of its changelog beyond compaction."""


def repartition_topics(app_id: str) -> list[str]:
    return [f"{app_id}-{name}" for name in REPARTITIONS]


def changelog_topics(app_id: str) -> dict[str, dict[str, str]]:
    """Each changelog topic and its settings, as Faust makes them."""
    return {
        f"{app_id}-{table}-changelog": {"cleanup.policy": "compact", **extra}
        for table, extra in TABLES.items()
    }
