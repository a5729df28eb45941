"""Reading the snapshot from Redis, and `cc-kpi kpi` / `cc-kpi top` on a known one."""

import os

import orjson
import pytest
import redis

from streams.live import cli
from streams.live.snapshot import as_json, parse_update, read
from tests.live.snapshot_fixture import RECORDS, FakeRedis, redis_contents
from tests.simulator.command import run_command


def test_read_takes_records_and_sla_states_and_skips_the_rest():
    contents = redis_contents()
    contents[b"cc:kpi:call|gone|-|1h"] = None  # expired between scan and read
    contents[b"cc:kpi:call|junk|-|1h"] = b"{not json"
    contents[b"cc:kpi:call|other|-|1h"] = b'{"schema": "something.else"}'
    snapshot = read(FakeRedis(contents))
    assert len(snapshot.records) == len(RECORDS)
    assert snapshot.records["call|billing|-|1h"] == RECORDS[1]
    assert snapshot.in_breach("service_level", "social|care|facebook|1h")
    assert not snapshot.in_breach("service_level", "call|support|-|1h")  # recovered
    assert snapshot.windows() == ["5m", "1h"]


def test_updates_replace_records_by_key():
    snapshot = read(FakeRedis(redis_contents()))
    newer = {**RECORDS[1], "kpis": {**RECORDS[1]["kpis"], "volume": 413}}
    snapshot.update(parse_update(orjson.dumps(newer)))
    assert snapshot.records["call|billing|-|1h"]["kpis"]["volume"] == 413
    assert parse_update(b"[]") is None and parse_update(b"nope") is None


def test_json_snapshot_filters_by_window_and_channel():
    snapshot = read(FakeRedis(redis_contents()))
    everything = orjson.loads(as_json(snapshot, None, None))
    assert len(everything["records"]) == len(RECORDS)
    assert set(everything["sla"]) == {
        "service_level:social|care|facebook|1h",
        "service_level:call|support|-|1h",
    }
    calls = orjson.loads(as_json(snapshot, ["1h"], "call"))
    assert list(calls["records"]) == ["call|*|-|1h", "call|billing|-|1h", "call|support|-|1h"]
    assert list(calls["sla"]) == ["service_level:call|support|-|1h"]


@pytest.fixture
def fake_redis(monkeypatch):
    fake = FakeRedis(redis_contents())
    monkeypatch.setattr(cli.redis.Redis, "from_url", lambda url, **options: fake)
    monkeypatch.delenv("CC_CONFIG", raising=False)
    return fake


def test_kpi_json_prints_the_snapshot(fake_redis, capsysbinary):
    assert run_command(cli, "kpi", "--json", "--window", "1h") == 0
    printed = orjson.loads(capsysbinary.readouterr().out)
    assert printed["records"]["call|billing|-|1h"] == RECORDS[1]
    assert "call|billing|-|5m" not in printed["records"]


def test_kpi_and_top_without_a_terminal_print_the_table_once(fake_redis, capsys):
    assert run_command(cli, "kpi", "--channel", "call") == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in table[2:5]] == ["call/*", "call/billing", "call/support"]
    assert len(table) == 7  # title, header, 3 rows, blank, legend
    assert run_command(cli, "top", "--window", "5m") == 0  # stdout is not a TTY here
    assert capsys.readouterr().out.splitlines()[2].startswith("call/billing")


def test_redis_down_is_one_line_and_exit_1(monkeypatch, capsys):
    monkeypatch.delenv("CC_CONFIG", raising=False)
    assert run_command(cli, "kpi", "--json", "--redis", "redis://127.0.0.1:1/0") == 1
    err = capsys.readouterr().err
    assert err.startswith("cc-kpi kpi: cannot read Redis at redis://127.0.0.1:1/0: ")
    assert err.count("\n") == 1


@pytest.mark.integration
@pytest.mark.skipif(not os.environ.get("CC_TEST_REDIS"), reason="needs CC_TEST_REDIS (make test)")
def test_kpi_json_against_a_real_redis(capsysbinary, monkeypatch):
    url = os.environ["CC_TEST_REDIS"].rsplit("/", 1)[0] + "/9"  # a DB of its own
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        client.mset(redis_contents())
        monkeypatch.delenv("CC_CONFIG", raising=False)
        assert run_command(cli, "kpi", "--json", "--redis", url) == 0
        printed = orjson.loads(capsysbinary.readouterr().out)
        assert len(printed["records"]) == len(RECORDS)
        assert printed["sla"]["service_level:social|care|facebook|1h"]["state"] == "breach"
    finally:
        client.flushdb()
        client.close()
