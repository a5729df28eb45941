"""Rolling windows: the running total equals a naive sum over the window."""

from hypothesis import given
from hypothesis import strategies as st

from streams.core.aggregate import COUNT_INDEX, FRT, Aggregate
from streams.core.window import RollingWindow

STARTED = COUNT_INDEX["started"]
SPAN, STEP = 60_000, 5_000

ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "advance"]),
        st.integers(min_value=0, max_value=400_000),
        st.integers(min_value=0, max_value=100_000),
    ),
    max_size=80,
)


def naive(applied: list[tuple[int, int]], clock: int) -> Aggregate:
    hi = clock // STEP
    lo, end = (hi - SPAN // STEP + 1) * STEP, (hi + 1) * STEP
    agg = Aggregate()
    for ts, value in applied:
        if lo <= ts < end:
            agg.apply(STARTED, 1)
            agg.apply(FRT, value)
    return agg


@given(ops)
def test_total_matches_naive_window(steps):
    window = RollingWindow(SPAN, STEP)
    clock = 0
    window.advance(clock)
    kept: list[tuple[int, int]] = []
    for op, ts, value in steps:
        if op == "advance":
            clock = max(clock, ts)
            window.advance(clock)
        else:
            if window.add(ts, STARTED, 1, 1) is not None:
                window.add(ts, FRT, value, 1)
                kept.append((ts, value))
    assert window.total == naive(kept, clock)


def test_bounds_are_aligned_to_the_step():
    window = RollingWindow(SPAN, STEP)
    window.advance(123_456)
    assert window.bounds_ms() == (65_000, 125_000)


def test_contribution_older_than_the_window_is_refused():
    window = RollingWindow(SPAN, STEP)
    window.advance(200_000)
    assert window.add(100_000, STARTED, 1, 1) is None
    assert window.total.count("started") == 0


def test_future_bucket_joins_when_the_clock_reaches_it():
    window = RollingWindow(SPAN, STEP)
    window.advance(10_000)
    window.add(30_000, STARTED, 1, 1)
    assert window.total.count("started") == 0
    window.advance(30_000)
    assert window.total.count("started") == 1


def test_restored_buckets_count_after_first_advance():
    source = RollingWindow(SPAN, STEP)
    source.advance(50_000)
    for ts in (10_000, 20_000, 45_000):
        source.add(ts, STARTED, 1, 1)
    restored = RollingWindow(SPAN, STEP)
    for index, bucket in source.items():
        restored.restore(index, bucket.copy())
    left = restored.advance(70_000)
    assert [index for index, _ in left] == [2]
    assert restored.total.count("started") == 2


def test_retraction_subtracts():
    window = RollingWindow(SPAN, STEP)
    window.advance(10_000)
    window.add(5_000, FRT, 700, 1)
    window.add(5_000, FRT, 700, -1)
    assert window.total.is_empty()
