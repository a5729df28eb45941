"""Speed control and the progress bar, with a fake clock."""

import io

import pytest

from streams.simulator.delivery import Pacer, deliver, parse_speed
from streams.simulator.progress import Progress
from streams.simulator.wire import Message


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Collect:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, message: Message) -> None:
        self.sent.append(message)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("text", "speed"), [("max", None), ("realtime", 1.0), ("60", 60.0), ("x2.5", 2.5)]
)
def test_speeds(text, speed):
    assert parse_speed(text) == speed


@pytest.mark.parametrize("text", ["0", "-3", "fast", "inf"])
def test_bad_speeds(text):
    with pytest.raises(ValueError, match=r"speed|expected"):
        parse_speed(text)


def test_pacing_maps_event_time_to_wall_time():
    clock = FakeClock()
    pacer = Pacer(60.0, clock=clock, sleep=clock.sleep)
    for at in (1_000_000, 1_060_000, 1_060_000, 1_660_000):  # 0, +1 min, same, +10 min
        pacer.wait(at)
    assert clock.slept == pytest.approx([1.0, 10.0])  # at x60: a minute per second
    clock.now += 30  # the sender fell behind: nothing to wait for
    pacer.wait(1_720_000)
    assert clock.slept == pytest.approx([1.0, 10.0])


def test_max_speed_never_waits():
    clock = FakeClock()
    pacer = Pacer(None, clock=clock, sleep=clock.sleep)
    for at in (0, 3_600_000, 7_200_000):
        pacer.wait(at)
    assert clock.slept == []


def test_deliver_counts_events_and_feeds_the_bar():
    clock = FakeClock()
    stream = io.StringIO()
    progress = Progress("run", stream=stream, enabled=True, clock=clock)
    messages = [Message(t, "call", None, b"{}", events=2) for t in range(1000)]

    def fraction(message, events):
        clock.now += 1  # time passes between draws
        return message.at / 1000

    sink = Collect()
    done = deliver(messages, sink, Pacer(None), progress, fraction)
    assert (done.messages, done.events) == (1000, 2000)
    assert sink.sent == messages
    frames = stream.getvalue().split("\r")[1:]
    assert len(frames) == 3  # every 256 messages, at most every 0.2 s
    assert frames[0].startswith("run [#######.....................]  26%  512 events  ")


def test_the_bar_shows_rate_and_stays_off_without_a_terminal():
    clock = FakeClock()
    bar = Progress("replay", stream=io.StringIO(), enabled=True, clock=clock)
    assert bar.line(50_000, 0.5, 2.0) == (
        "replay [##############..............]  50%  50,000 events  25,000 events/s"
    )
    quiet = io.StringIO()  # not a TTY
    off = Progress("replay", stream=quiet, clock=clock)
    off.update(10, 0.1)
    off.close()
    assert quiet.getvalue() == ""
