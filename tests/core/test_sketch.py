"""The quantile sketch: accuracy bound, merge and subtraction."""

from hypothesis import given
from hypothesis import strategies as st

from streams.core.sketch import ALPHA, Sketch

values = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=300)
quantiles = st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0])


def exact(sample: list[int], q: float) -> int:
    ordered = sorted(sample)
    return ordered[int(q * (len(ordered) - 1))]


def sketch_of(sample: list[int]) -> Sketch:
    sketch = Sketch()
    for v in sample:
        sketch.add(v)
    return sketch


@given(values, quantiles)
def test_quantile_within_relative_error(sample, q):
    estimate = sketch_of(sample).quantile(q)
    truth = exact(sample, q)
    assert estimate is not None
    if truth == 0:
        assert estimate == 0
    else:
        assert abs(estimate - truth) <= ALPHA * truth * (1 + 1e-9)


@given(values, values)
def test_merge_equals_sketch_of_union(a, b):
    merged = sketch_of(a)
    merged.merge(sketch_of(b))
    assert merged == sketch_of(a + b)
    assert merged.count == len(a) + len(b)


@given(values, values)
def test_subtracting_a_part_leaves_the_rest(a, b):
    whole = sketch_of(a + b)
    whole.merge(sketch_of(b), -1)
    assert whole == sketch_of(a)
    assert whole.count == len(a)


@given(values)
def test_wire_round_trip(sample):
    sketch = sketch_of(sample)
    assert Sketch.from_wire(sketch.to_wire()) == sketch


def test_empty_sketch_has_no_quantile():
    assert Sketch().quantile(0.5) is None


def test_removing_every_value_empties_the_bins():
    sketch = sketch_of([10, 20, 20])
    for v in (10, 20, 20):
        sketch.add(v, -1)
    assert sketch.bins == {} and sketch.count == 0
