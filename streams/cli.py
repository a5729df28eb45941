"""`cc-kpi`: the project's command line.

cc-kpi worker     run a pipeline worker (faust -A streams.pipeline.app worker)
cc-kpi topics     create the input and output topics if they are missing
cc-kpi feed       produce a simple live event feed to the input topics
cc-kpi run        the demo: topics, one worker and the feed, until Ctrl-C
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

import orjson

from streams.allocator import worker_environment
from streams.config import ConfigError, Settings, load_settings
from streams.connections import ServiceError, kafka_args, kafka_errors
from streams.live import cli as live_cli
from streams.pipeline.topics import changelog_topics, repartition_topics
from streams.replay import cli as replay_cli
from streams.simulator import cli as simulator_cli

LOG_LEVELS = ("crit", "error", "warn", "info", "debug")
"""What `faust worker -l` accepts."""


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


DEFAULT_PARTITIONS = 4
"""Partitions of the topics `worker`, `topics` and `run` create."""


TOPICS_READY_MS = 60_000
"""How long new topics may take to have a leader for every partition."""


def ensure_topics(settings: Settings, partitions: int) -> list[str]:
    """Create the input, output and internal topics (the stages' and the
    tables' changelogs) that do not exist yet; returns those created. Workers
    must not start before the internal topics exist: a consumer group formed
    while one is missing gets no partitions of it (streams.pipeline.topics)."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    topics = settings.topics
    wanted = {
        name: partitions for name in (*topics.inputs(), topics.kpis, topics.sla, topics.deadletter)
    }
    wanted |= dict.fromkeys(repartition_topics(settings.app_id), settings.internal_partitions)
    changelogs = changelog_topics(settings.app_id)
    wanted |= dict.fromkeys(changelogs, settings.internal_partitions)
    with kafka_errors(settings):
        admin = KafkaAdminClient(client_id="cc-kpi-admin", **kafka_args(settings))
        try:
            existing = set(admin.list_topics())
            missing = [name for name in wanted if name not in existing]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics(
                        {
                            n: {
                                "num_partitions": wanted[n],
                                "replication_factor": 1,
                                "configs": changelogs.get(n, {}),
                            }
                            for n in missing
                        },
                        timeout_ms=30_000,
                    )
                # Not create_topics' own wait (10 s): a busy broker can take longer.
                admin.wait_for_topics(missing, timeout_ms=TOPICS_READY_MS)
            return missing
        finally:
            admin.close()


def cmd_topics(args: argparse.Namespace) -> int:
    created = ensure_topics(_settings(args), args.partitions)
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0


def worker_command(args: argparse.Namespace) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "faust",
        "-A",
        "streams.pipeline.app",
        "--loop",
        "uvloop",
        "worker",
        "-l",
        args.log_level,
    ]
    return command


def worker_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """A worker's environment: `environ` with the allocator of
    `pipeline.allocator` (streams.allocator)."""
    env, warning = worker_environment(environ, settings.allocator)
    if warning:
        print(f"cc-kpi: {warning}", file=sys.stderr, flush=True)
    return env


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    ensure_topics(settings, args.partitions)
    env = worker_env(settings, os.environ)
    if args.config:
        env["CC_CONFIG"] = args.config
    command = worker_command(args)
    os.execve(command[0], command, env)
    return 0  # unreachable: execve replaces the process


def cmd_feed(args: argparse.Namespace) -> int:
    from kafka import KafkaProducer

    from streams.feed import SURVEY_TOPIC, TOPIC_OF, Feed

    settings = _settings(args)
    topics = settings.topics
    topic_of = dict(
        zip(
            TOPIC_OF.values(),
            (topics.calls, topics.chats, topics.emails, topics.social),
            strict=True,
        )
    )
    topic_of[SURVEY_TOPIC] = topics.surveys
    with kafka_errors(settings):
        producer = KafkaProducer(linger_ms=20, acks="all", **kafka_args(settings))
    now = int(time.time() * 1000)
    feed = Feed(seed=args.seed, start_ms=now, gap_ms=int(1000 / args.rate), run=f"{now:x}-")
    started = 0
    try:
        for due, item in feed.live():
            if item.event["type"] == "contact.started":
                started += 1
                if args.contacts and started > args.contacts:
                    break
            delay = (due - time.time() * 1000) / 1000
            if delay > 0:
                time.sleep(delay)
            producer.send(
                topic_of[item.topic], key=item.key.encode(), value=orjson.dumps(item.event)
            )
    except KeyboardInterrupt:
        pass
    finally:
        producer.flush()
        producer.close()
    return 0


def sla_line(event: dict[str, object]) -> str:
    """One cc.sla event as a line for people."""
    network = f"/{event['network']}" if event["network"] else ""
    return (
        f"{event['at']}  {str(event['state']).upper():9}  {event['kpi']} "
        f"{event['channel']}/{event['queue']}{network} ({event['window']}): "
        f"{event['value']:.3f} vs target {event['target']} over {event['contacts']} contacts"
    )


def cmd_sla(args: argparse.Namespace) -> int:
    """Print SLA breach / recovery events from cc.sla as they come."""
    from kafka import KafkaConsumer

    settings = _settings(args)
    with kafka_errors(settings):
        consumer = KafkaConsumer(
            settings.topics.sla,
            auto_offset_reset="earliest" if args.from_beginning else "latest",
            enable_auto_commit=False,
            group_id=None,
            **kafka_args(settings),
        )
        try:
            for message in consumer:
                print(sla_line(orjson.loads(message.value)), flush=True)
        except KeyboardInterrupt:
            pass
        finally:
            consumer.close()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The demo: one worker on the event clock, the simulator on a scenario
    (accelerated), and the SLA events printed as they happen."""
    settings = _settings(args)
    ensure_topics(settings, args.partitions)
    env = {**os.environ, "CC_CLOCK": "event"}
    if args.config:
        # The worker is Faust's command line: the file reaches it as CC_CONFIG.
        env["CC_CONFIG"] = args.config
    me = [sys.executable, "-m", "streams.cli"] + (["--config", args.config] if args.config else [])
    processes = [
        subprocess.Popen(worker_command(args), env=worker_env(settings, env)),
        subprocess.Popen(
            [
                *me,
                "simulate",
                args.scenario,
                "--speed",
                str(args.speed),
                "--start",
                "now",
                "--no-progress",
            ],
            env=env,
        ),
        subprocess.Popen([*me, "sla"], env=env),
    ]
    url = f"http://{settings.metrics_addr}:{settings.metrics_port}/metrics"
    print(
        f"\nPipeline running on scenario {args.scenario} at x{args.speed:g}.\n"
        f"  metrics:   {url}\n"
        f"  live view: .venv/bin/cc-kpi top    (or: cc-kpi kpi --json)\n"
        f"  Redis:     {settings.redis_url} (keys cc:kpi:*, channel cc:kpi:updates)\n"
        "  SLA breaches and recoveries from cc.sla are printed below. Ctrl-C stops.\n",
        flush=True,
    )
    worker, simulator, _sla = processes
    # A SIGTERM (a service manager, `kill`) or a SIGQUIT (Ctrl-\) stops the
    # demo as Ctrl-C does: Python's default would end this process alone and
    # leave its children running (the worker answers SIGQUIT with a stack
    # dump, and goes on).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGQUIT, _interrupt)
    try:
        while worker.poll() is None and simulator.poll() in (None, 0):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    return worker.returncode or 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="cc-kpi", description=__doc__.split("\n\n")[0])
    top.add_argument("--config", help="TOML config file (default: $CC_CONFIG)")
    sub = top.add_subparsers(dest="command", required=True)

    worker = sub.add_parser("worker", help="run a pipeline worker")
    worker.add_argument("--log-level", default="info", dest="log_level", choices=LOG_LEVELS)
    worker.add_argument(
        "--partitions",
        type=int,
        default=DEFAULT_PARTITIONS,
        help=f"partitions of topics this creates (default {DEFAULT_PARTITIONS})",
    )
    worker.set_defaults(func=cmd_worker)

    topics = sub.add_parser("topics", help="create the input/output topics")
    topics.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    topics.set_defaults(func=cmd_topics)

    feed = sub.add_parser("feed", help="produce a simple live event feed")
    feed.add_argument("--rate", type=float, default=5.0, help="contacts per second")
    feed.add_argument("--contacts", type=int, default=0, help="stop after N contacts (0: never)")
    feed.add_argument("--seed", type=int, default=1)
    feed.set_defaults(func=cmd_feed)

    run = sub.add_parser("run", help="demo: worker + simulator + SLA events until Ctrl-C")
    run.add_argument("--scenario", default="normal-day", help="simulator scenario (normal-day)")
    run.add_argument("--speed", type=float, default=60.0, help="simulated seconds per second")
    run.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    run.add_argument("--log-level", default="warn", dest="log_level", choices=LOG_LEVELS)
    run.set_defaults(func=cmd_run)
    sla = sub.add_parser("sla", help="print SLA breach / recovery events from cc.sla")
    sla.add_argument("--from-beginning", action="store_true", help="also the past events")
    sla.set_defaults(func=cmd_sla)

    simulator_cli.add_subcommands(sub)
    replay_cli.add_subcommands(sub)
    live_cli.add_subcommands(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as error:
        print(f"cc-kpi: bad configuration: {error}", file=sys.stderr)
        return 2
    except ServiceError as error:
        print(f"cc-kpi: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
