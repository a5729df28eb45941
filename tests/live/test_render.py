"""The live view rendered from a known snapshot: layout, highlighting, narrow terminals."""

from streams.live.breaches import wrong_side
from streams.live.render import ALERT, RESET, duration, render
from streams.live.snapshot import read
from tests.live.snapshot_fixture import RECORDS, FakeRedis, redis_contents


def snapshot():
    return read(FakeRedis(redis_contents()))


EXPECTED = """\
cc-kpi top  window 1h to 2026-11-23 10:00:05 UTC  8 rows, 6 with breaches
CHANNEL/QUEUE/NETWORK       VOLUME   QUEUE   OLDEST       SL   ANSWER    ABAND  FRT p90      FCR      ESC     CSAT    NPS      AHT
call/*                       1,250       9      41s    78.0%!   93.0%     7.0%      48s!   78.0%     6.0%    86.0%    +31    5m12s
call/billing                   412       7      41s    71.0%!   88.0%!   12.0%!   1m35s!   78.0%     6.0%    86.0%    +31    5m05s
call/support                   838       2      12s    84.0%    93.0%     4.0%      22s    78.0%     6.0%    86.0%    +31    5m16s
chat/support                    95       0        -    91.0%    98.0%     2.0%      38s    81.0%     4.0%    74.0%!   +12   10m40s
email/support                   31     118   14h00m   100.0%   100.0%        -    8h21m        -        -        -      -        -
social/*/*                     260     180    2h30m    55.0%!  100.0%        -    3h51m!   70.0%!       -        -      -        -
social/care/facebook            40      20   33m20s    94.0%!  100.0%        -   37m23s        -        -        -      -        -
social/care/twitter            200     150    2h30m    43.0%!  100.0%        -    4h13m!       -        -        -      -        -

! = misses its target or is in SLA breach    q quit    w window (5m)
"""  # noqa: E501 - a screen is as wide as it is


def test_a_known_snapshot_renders_as_expected():
    assert render(snapshot(), "1h", 140, color=False, interactive=True) == EXPECTED


def test_colour_marks_exactly_the_flagged_cells():
    screen = render(snapshot(), "1h", 140, color=True, interactive=True)
    lines = screen.splitlines()
    billing = next(line for line in lines if line.startswith("call/billing"))
    assert billing.count(ALERT) == 4
    assert f"{ALERT}71.0%!{RESET}" in billing and f"{ALERT}1m35s!{RESET}" in billing
    support = next(line for line in lines if line.startswith("call/support"))
    assert ALERT not in support  # a recovered SLA state is not a breach
    assert screen.count(ALERT) == EXPECTED.count("!") - 1  # every "!" but the legend's
    assert "\x1b[1mcall/*" in screen  # roll-ups in bold


def test_a_narrow_terminal_drops_whole_columns_from_the_right():
    screen = render(snapshot(), "1h", 80, color=False, interactive=False)
    lines = screen.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].split() == [
        "CHANNEL/QUEUE/NETWORK",
        "VOLUME",
        "QUEUE",
        "OLDEST",
        "SL",
        "ANSWER",
        "ABAND",
    ]
    assert lines[3].split() == ["call/billing", "412", "7", "41s", "71.0%!", "88.0%!", "12.0%!"]
    assert lines[0].endswith("8 rows, 6 with breaches")  # chat's CSAT breach is off-screen
    assert lines[-1] == "! = misses its target or is in SLA breach"


def test_other_windows_and_empty_windows():
    screen = render(snapshot(), "5m", 140, color=False, interactive=False)
    assert screen.splitlines()[2].split()[:5] == ["call/billing", "40", "-", "-", "50.0%!"]
    empty = render(snapshot(), "24h", 140, color=False, interactive=True)
    assert "no KPI records for window 24h in Redis yet" in empty
    assert "w window (5m, 1h)" in empty


def test_wrong_side_follows_each_targets_direction():
    billing = RECORDS[1]
    assert wrong_side(billing) == {
        "service_level",
        "answer_rate",
        "abandonment_rate",
        "frt_p90_seconds",
    }
    at_target = {
        **billing,
        "kpis": {**billing["kpis"], "service_level": 0.8, "abandonment_rate": 0.1},
    }
    assert "service_level" not in wrong_side(at_target)
    assert "abandonment_rate" not in wrong_side(at_target)
    no_targets = {**billing, "targets": {}}
    assert wrong_side(no_targets) == set()


def test_durations_stay_short():
    assert [duration(s) for s in (4.4, 59.6, 61, 3599, 3600, 86_399, 90_000)] == [
        "4s",
        "1m00s",
        "1m01s",
        "59m59s",
        "1h00m",
        "23h59m",
        "1d01h",
    ]
