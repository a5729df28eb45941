"""The latest KPI records in Redis, with a pub/sub notification per update.

Keys: `cc:kpi:<channel>|<queue>|<network>|<window>` (network `-` outside social)
hold the record JSON and expire after the TTL unless refreshed; every write is
also published on `cc:kpi:updates`. A record that is no longer produced (a key
whose every contribution was retracted) is deleted. SLA states: `cc:sla:<kpi>:<record key>`
hold the latest cc.sla event. The whole snapshot is written each time, so after
a Redis outage the next snapshot brings everything back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Final

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streams.core.board import key_of_record

KPI_PREFIX: Final = "cc:kpi:"
SLA_PREFIX: Final = "cc:sla:"
UPDATES_CHANNEL: Final = "cc:kpi:updates"

log = logging.getLogger(__name__)


class RedisSink:
    def __init__(self, client: aioredis.Redis, ttl_ms: int) -> None:
        """`client`: from `streams.connections.async_redis_client`, which adds the
        ACL user, password and TLS settings."""
        self.client = client
        self.ttl_ms = ttl_ms
        self.up: bool | None = None
        """Whether Redis took the last write or answered the last check; None
        until it has been asked."""
        self.errors = 0
        self.written: set[str] = set()

    async def write(
        self, records: Iterable[dict[str, Any]], sla_events: Iterable[tuple[str, dict[str, Any]]]
    ) -> bool:
        """Write every record and SLA state, and delete the records this sink wrote
        before that are gone now; returns whether Redis took them."""
        keys = set()
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for record in records:
                    body = orjson.dumps(record)
                    key = KPI_PREFIX + key_of_record(record)
                    keys.add(key)
                    pipe.set(key, body, px=self.ttl_ms)
                    pipe.publish(UPDATES_CHANNEL, body)
                for key in self.written - keys:
                    pipe.delete(key)
                for store_key, event in sla_events:
                    record_key, _, kpi = store_key.rpartition("|")
                    pipe.set(f"{SLA_PREFIX}{kpi}:{record_key}", orjson.dumps(event), px=self.ttl_ms)
                if not len(pipe):
                    # An empty pipeline never reaches Redis, so it tells nothing.
                    return await self.check()
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self.errors += 1
            self._down("write failed", exc)
            return False
        self._answered("snapshot written")
        self.written = keys
        return True

    async def check(self) -> bool:
        """PING Redis: while no snapshot is due (before the event clock has
        started, say) its health shows too, not only once a write fails."""
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            self._down("check failed", exc)
            return False
        self._answered("it answers")
        return True

    def _down(self, what: str, exc: BaseException) -> None:
        if self.up is not False:
            log.warning(
                "Redis %s (%s); will retry with the next snapshot", what, type(exc).__name__
            )
        self.up = False

    def _answered(self, what: str) -> None:
        if self.up is False:
            log.info("Redis is back; %s", what)
        self.up = True

    def disown(self, channels: set[str]) -> None:
        """These channels moved to another worker: their keys are its to write
        and delete from now on."""
        self.written = {
            key for key in self.written if key[len(KPI_PREFIX) :].split("|", 1)[0] not in channels
        }

    async def close(self) -> None:
        await self.client.aclose()
