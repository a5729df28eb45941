"""`ts`: RFC 3339 with an offset or integer epoch ms, always to UTC epoch ms."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.contract.decode import MAX_TS, MIN_TS, parse_rfc3339
from tests.contract.support import STARTED_CALL, decode, rejection

NOON = 1_714_564_800_000  # 2024-05-01T12:00:00Z


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2024-05-01T12:00:00Z", NOON),
        ("2024-05-01T12:00:00+00:00", NOON),
        ("2024-05-01T12:00:00-00:00", NOON),
        ("2024-05-01T12:00:00.123Z", NOON + 123),
        ("2024-05-01T12:00:00.5Z", NOON + 500),
        ("2024-05-01T12:00:00.05Z", NOON + 50),
        ("2024-05-01T12:00:00.1239Z", NOON + 123),  # truncated, not rounded
        ("2024-05-01T12:00:00.999999999Z", NOON + 999),
        ("2024-05-01T12:00:00.000001Z", NOON),
        ("2024-05-01T14:00:00+02:00", NOON),
        ("2024-05-01T14:00:00.250+02:00", NOON + 250),
        ("2024-05-01T06:30:00-05:30", NOON),
        ("2024-05-02T01:45:00+13:45", NOON),
        ("2024-04-30T12:01:00-23:59", NOON),
        ("2024-05-01t12:00:00z", NOON),
        ("2024-03-01T00:30:00+01:00", 1_709_249_400_000),  # 2024-02-29T23:30Z
        ("2000-01-01T00:00:00Z", MIN_TS),
        ("2099-12-31T23:59:59.999Z", MAX_TS - 1),
    ],
)
def test_rfc3339_becomes_utc_epoch_ms(text: str, ms: int) -> None:
    assert parse_rfc3339(text) == ms
    (event,) = decode({**STARTED_CALL, "ts": text}).events
    assert event.ts == ms


@pytest.mark.parametrize("ms", [MIN_TS, NOON, NOON + 7, MAX_TS - 1])
def test_epoch_ms_is_taken_as_it_is(ms: int) -> None:
    (event,) = decode({**STARTED_CALL, "ts": ms}).events
    assert event.ts == ms


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T12:00:00",  # naive
        "2024-05-01T12:00:00.123",
        "2024-05-01T12:00:00+0200",
        "2024-05-01T12:00:00+02",
        "2024-05-01T12:00:00+02:00:00",
        "2024-05-01T12:00:00+24:00",
        "2024-05-01T12:00:00+02:60",
        "2024-05-01 12:00:00Z",
        "2024-05-01T12:00Z",
        "2024-05-01T12:00:00.Z",
        "2024-05-01T12:00:00,5Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T12:60:00Z",
        "2016-12-31T23:59:60Z",  # leap second
        "2023-02-29T12:00:00Z",
        "2024-04-31T12:00:00Z",
        "2024-13-01T12:00:00Z",
        "2024-00-01T12:00:00Z",
        "20240501T120000Z",
        "2024-W18-3T12:00:00Z",
        "2024-05-01",
        "2024-05-01T12:00:00Z\n",
        " 2024-05-01T12:00:00Z",
        "\uff12\uff10\uff12\uff14-05-01T12:00:00Z",  # full-width digits
        "0000-01-01T00:00:00Z",
        "",
    ],
)
def test_other_strings_are_not_timestamps(text: str) -> None:
    assert parse_rfc3339(text) is None
    rejected = rejection({**STARTED_CALL, "ts": text})
    assert rejected.reason == "out_of_range"
    assert "RFC 3339" in rejected.detail


@pytest.mark.parametrize(
    "ts",
    [
        "1999-12-31T23:59:59.999Z",
        "2000-01-01T00:30:00+01:00",  # 1999-12-31T23:30Z
        "2100-01-01T00:00:00Z",
        "2099-12-31T23:30:00-01:00",  # 2100-01-01T00:30Z
        "1970-01-01T00:00:00Z",
        MIN_TS - 1,
        MAX_TS,
        0,
    ],
)
def test_times_outside_2000_to_2100_utc_are_out_of_range(ts: str | int) -> None:
    rejected = rejection({**STARTED_CALL, "ts": ts})
    assert rejected.reason == "out_of_range"
    assert "2000-01-01" in rejected.detail


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1999-12-31T23:30:00-01:00", MIN_TS + 30 * 60_000),
        ("2100-01-01T00:30:00+01:00", MAX_TS - 30 * 60_000),
    ],
)
def test_the_range_is_judged_in_utc(text: str, ms: int) -> None:
    (event,) = decode({**STARTED_CALL, "ts": text}).events
    assert event.ts == ms


_ZONES = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(
    st.datetimes(datetime(2000, 1, 2), datetime(2099, 12, 30), timezones=_ZONES),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
)
def test_any_offset_and_precision_gives_the_utc_instant(moment: datetime, spec: str) -> None:
    # calendar.timegm is an independent route to the UTC instant
    expected = calendar.timegm(moment.utctimetuple()) * 1000
    if spec != "seconds":
        expected += moment.microsecond // 1000
    (event,) = decode({**STARTED_CALL, "ts": moment.isoformat(timespec=spec)}).events
    assert event.ts == expected
