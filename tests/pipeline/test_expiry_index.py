"""The expiry index: a tick takes every key that can be due, and, within a
bucket, nothing filed for later."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.pipeline.expiry import ExpiryIndex

BUCKET = 100

keys = st.sampled_from([f"k{n}" for n in range(8)])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("file"), keys, st.integers(0, 2_000)),
        st.tuples(st.just("forget"), keys, st.just(0)),
        st.tuples(st.just("take"), st.just(""), st.integers(0, 2_000)),
    ),
    max_size=60,
)


@given(operations)
def test_a_tick_takes_the_keys_of_every_begun_bucket_and_no_other(ops):
    """Against a model: each key's earliest due time filed since it was last
    taken or forgotten."""
    index = ExpiryIndex(BUCKET)
    model: dict[str, int] = {}
    for op, key, at in ops:
        if op == "file":
            index.file(key, at)
            model[key] = min(at, model.get(key, at))
        elif op == "forget":
            index.forget(key)
            model.pop(key, None)
        else:
            taken = index.take(at)
            expected = {k for k, due in model.items() if due // BUCKET <= at // BUCKET}
            assert sorted(taken) == sorted(expected)
            for k in expected:
                del model[k]
        assert len(index) == len(model)


def test_filing_keeps_the_earliest_due_time():
    index = ExpiryIndex(BUCKET)
    index.file("a", 950)
    index.file("a", 150)
    index.file("a", 1_500)
    assert index.take(99) == []
    assert index.take(199) == ["a"]
    assert index.take(10_000) == []


def test_a_key_filed_again_after_a_take_comes_back_at_its_new_time():
    index = ExpiryIndex(BUCKET)
    index.file("a", 120)
    assert index.take(130) == ["a"]
    index.file("a", 150)
    index.file("b", 450)
    assert index.take(199) == ["a"]
    assert index.take(499) == ["b"]
