"""The latency producer: feed events at a steady rate with `ts` = now, and log
when each `contact.started` was handed to Kafka.

Usage: python -m bench.latency BOOTSTRAP PREFIX RATE SECONDS BATCHED LOG
Every 10 ms the events due are sent: with BATCHED=1 as one JSON array per topic
(what a high-volume producer does; at 5,000 events/s about 10 per topic and
tick), with BATCHED=0 one message per event. LOG gets one line per started
event: its production time (epoch s, float).
The driver watches the started counts in /metrics and Redis rise past each one.
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
import uvloop
from aiokafka import AIOKafkaProducer

from bench.data import LOGICAL, START_MS
from streams.feed import Feed

TICK_S = 0.01


async def steady(
    bootstrap: str, prefix: str, rate: float, seconds: float, batched: bool, log: str
) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)
    await producer.start()
    feed = Feed(11, START_MS, customers=200_000, run=f"lat{int(time.time())}-").live()
    started: list[float] = []
    sent = 0
    begin = time.monotonic()
    try:
        while (elapsed := time.monotonic() - begin) < seconds:
            due = int(elapsed * rate)
            tick: dict[str, list[bytes]] = {}
            now_ms = int(time.time() * 1000)
            for _ in range(due - sent):
                _, item = next(feed)
                topic = f"{prefix}.{LOGICAL[item.topic]}"
                event = dict(item.event, ts=now_ms)
                if batched:
                    tick.setdefault(topic, []).append(orjson.dumps(event))
                else:
                    await producer.send(topic, orjson.dumps(event), key=item.key.encode())
                if event["type"] == "contact.started":
                    started.append(time.time())
            for topic, values in tick.items():
                await producer.send(topic, b"[" + b",".join(values) + b"]")
            sent = due
            await asyncio.sleep(TICK_S)
        await producer.flush()
    finally:
        await producer.stop()
    with open(log, "w") as out:
        out.writelines(f"{t:.6f}\n" for t in started)
    return sent


def main() -> None:
    bootstrap, prefix, rate, seconds, batched, log = sys.argv[1:]
    result = steady(bootstrap, prefix, float(rate), float(seconds), batched == "1", log)
    print(uvloop.run(result), flush=True)


if __name__ == "__main__":
    main()
