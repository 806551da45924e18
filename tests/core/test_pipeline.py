"""The Pipeline recipe and the per-pixel steps of the chain (no I/O, no Qt)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sarlang_core.errors import PipelineError
from sarlang_core.preprocess import FILTERS, FilterSpec, Pipeline, StretchSpec, stretch_to_uint8, to_db, to_domain
from sarlang_core.preprocess.radiometry import resolve_quantity
from sarlang_core.preprocess.stretch import HistogramAccumulator, percentile_limits

filters = st.builds(
    FilterSpec,
    name=st.sampled_from(FILTERS),
    window=st.sampled_from([3, 5, 7, 9, 11]),
    looks=st.floats(0.5, 16),
    damping=st.floats(0, 10),
    snap_exact=st.booleans(),
)
stretches = st.one_of(st.none(), st.tuples(st.floats(0, 49), st.floats(51, 100)).map(lambda t: StretchSpec(*t)))
pipelines = st.builds(
    Pipeline,
    band=st.one_of(st.integers(0, 3), st.sampled_from(["VV", "VH", "HH", "HV"])),
    quantity=st.sampled_from(["auto", "intensity", "amplitude"]),
    domain=st.sampled_from(["intensity", "amplitude"]),
    filter=filters,
    db=st.booleans(),
    stretch=stretches,
)


@given(pipelines)
def test_pipeline_json_round_trip(p):
    text = p.to_json()
    assert json.loads(text)["schema"] == "sarlang.pipeline/1"
    assert Pipeline.from_json(text) == p


def test_pipeline_is_immutable_and_derivable():
    p = Pipeline()
    with pytest.raises(Exception):
        p.db = False  # frozen
    q = p.with_filter(name="lee", window=5)
    assert q.filter.name == "lee" and p.filter.name == "refined-lee"
    assert p.raw().filter.name == "none" and p.raw().stretch == p.stretch
    assert p.filter.effective_window == 7 and q.filter.effective_window == 5


@pytest.mark.parametrize("make, msg", [
    (lambda: FilterSpec(name="gauss"), "unknown filter"),
    (lambda: FilterSpec(name="lee", window=4), "odd"),
    (lambda: FilterSpec(name="lee", looks=0), "looks"),
    (lambda: FilterSpec(name="frost", damping=-1), "damping"),
    (lambda: StretchSpec(98, 2), "low < high"),
    (lambda: StretchSpec(2, 98, "guess"), "limits"),
    (lambda: Pipeline(band=-1), "band"),
    (lambda: Pipeline(quantity="power"), "quantity"),
    (lambda: Pipeline.from_json("{not json"), "not valid JSON"),
    (lambda: Pipeline.from_json('{"filter": {"name": "lee", "size": 3}}'), "invalid pipeline"),
    (lambda: Pipeline.from_json('{"colour": "red"}'), "unknown pipeline field"),
    (lambda: Pipeline.from_json('{"schema": "other/9"}'), "schema"),
])
def test_invalid_recipes_are_refused_clearly(make, msg):
    with pytest.raises(PipelineError, match=msg):
        make()


def test_pipeline_load_reports_the_file(tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text("[1, 2]")
    with pytest.raises(PipelineError, match="p.json"):
        Pipeline.load(bad)
    with pytest.raises(PipelineError, match="cannot read"):
        Pipeline.load(tmp_path / "missing.json")


@settings(max_examples=50)
@given(st.floats(1e-4, 1e6))  # above the -50 dB floor
def test_db_round_trip(intensity):
    db = to_db(np.array([intensity], np.float32), "intensity", -50.0)[0]
    assert 10 ** (db / 10) == pytest.approx(intensity, rel=1e-5)
    # amplitude a has intensity a^2: the same dB
    db_a = to_db(np.array([np.sqrt(intensity)], np.float32), "amplitude", -50.0)[0]
    assert db_a == pytest.approx(db, abs=1e-4)


def test_db_floors_zeros_and_negatives_and_keeps_nan():
    out = to_db(np.array([0.0, -3.0, np.nan, 1.0], np.float32), "intensity", -40.0)
    assert out[0] == pytest.approx(-40.0) and out[1] == pytest.approx(-40.0)
    assert np.isnan(out[2]) and out[3] == pytest.approx(0.0)


def test_domain_conversions():
    amp = np.array([0.0, 2.0, np.nan], np.float32)
    assert np.allclose(to_domain(amp, "amplitude", "intensity")[:2], [0.0, 4.0])
    inten = np.array([4.0, -1.0, np.nan], np.float32)
    out = to_domain(inten, "intensity", "amplitude")
    assert out[0] == 2.0 and out[1] == 0.0 and np.isnan(out[2])
    assert to_domain(inten, "intensity", "intensity") is not None


def test_quantity_resolution():
    assert resolve_quantity("amplitude", "intensity", "float32", False) == "amplitude"
    assert resolve_quantity("auto", "unknown", "complex64", True) == "intensity"
    assert resolve_quantity("auto", "amplitude", "float32", False) == "amplitude"
    assert resolve_quantity("auto", "unknown", "uint16", False) == "amplitude"
    assert resolve_quantity("auto", "unknown", "float32", False) == "intensity"


def test_stretch_maps_limits_to_0_and_255():
    v = np.array([-30.0, -20.0, -10.0, 0.0, np.nan], np.float32)
    out = stretch_to_uint8(v, -20.0, -10.0)
    assert out.dtype == np.uint8
    assert list(out) == [0, 0, 255, 255, 0]
    mid = stretch_to_uint8(np.array([-15.0], np.float32), -20.0, -10.0)[0]
    assert mid in (127, 128)


def test_histogram_percentiles_match_numpy_to_a_fraction_of_a_grey_level():
    rng = np.random.default_rng(0)
    vals = (10 * np.log10(rng.gamma(1.0, 1.0, 200_000))).astype(np.float32)
    vals[::97] = np.nan
    acc = HistogramAccumulator(-60, 30)
    for chunk in np.array_split(vals, 7):
        acc.add(chunk)
    lo, hi = percentile_limits(vals, 2, 98)
    grey = (hi - lo) / 255
    assert acc.percentile(2) == pytest.approx(lo, abs=grey / 50)
    assert acc.percentile(98) == pytest.approx(hi, abs=grey / 50)


def test_histogram_says_when_a_percentile_is_out_of_range():
    acc = HistogramAccumulator(0, 1)
    acc.add(np.array([5.0] * 10 + [0.5], np.float32))
    assert acc.percentile(50) is None
    assert percentile_limits(np.array([np.nan], np.float32), 2, 98) is None
