"""The Pipeline recipe and the per-pixel steps of the chain (no I/O, no Qt)."""

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarlang_core.errors import PipelineError
from sarlang_core.preprocess import FILTERS, FilterSpec, Pipeline, StretchSpec, stretch_to_uint8, to_db, to_domain
from sarlang_core.preprocess.pipeline import QUANTITY
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
    with pytest.raises(dataclasses.FrozenInstanceError):
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


def test_stretch_maps_limits_to_1_and_255_and_nodata_alone_to_0():
    """Issue 10 case 9: nodata and the darkest valid pixels both became 0 in 8-bit output."""
    v = np.array([-30.0, -20.0, -10.0, 0.0, np.nan], np.float32)
    out = stretch_to_uint8(v, -20.0, -10.0)
    assert out.dtype == np.uint8
    assert list(out) == [1, 1, 255, 255, 0]
    mid = stretch_to_uint8(np.array([-15.0], np.float32), -20.0, -10.0)[0]
    assert mid == 128
    flat = stretch_to_uint8(np.array([3.0, np.nan], np.float32), 3.0, 3.0)   # no span: valid stays >= 1
    assert list(flat) == [1, 0]


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


@pytest.mark.parametrize("make, msg", [
    (lambda: FilterSpec(name="lee", window=33), r"filter window must be an odd integer from 3 to 31, got 33"),
    (lambda: FilterSpec(name="lee", window=1), r"from 3 to 31, got 1"),
    (lambda: FilterSpec(name="lee", looks=float("nan")), r"number of looks must be a number > 0, got nan"),
    (lambda: FilterSpec(name="lee", looks="2"), r"number of looks must be a number > 0, got '2'"),
    (lambda: FilterSpec(snap_exact="yes"), r"SNAP-exact quirks must be true or false"),
    (lambda: StretchSpec(-1, 98), r"lower stretch percentile must be a number from 0 to 100, got -1"),
    (lambda: StretchSpec(2, 101), r"upper stretch percentile must be a number from 0 to 100, got 101"),
    (lambda: Pipeline(db_floor=10.0), r"dB floor must be a number from -200 to 0, got 10"),
    (lambda: Pipeline(domain="power"), r"unknown filter domain 'power'; choose one of intensity, amplitude"),
    (lambda: Pipeline.from_json('{"filter": {"name": "lee", "window": 41}}'), "from 3 to 31, got 41"),
])
def test_out_of_bounds_values_are_refused_with_the_bounds(make, msg):
    with pytest.raises(PipelineError, match=msg):
        make()


def test_bounds_live_in_the_field_metadata():
    from sarlang_core.preprocess.filters.params import Param
    from sarlang_core.preprocess.pipeline import field_params

    for cls in (FilterSpec, StretchSpec, Pipeline):
        params = field_params(cls)
        assert params and all(isinstance(p, Param) and p.help for p in params.values())
    assert field_params(FilterSpec)["name"].choices == FILTERS
    window = field_params(FilterSpec)["window"]
    window.check(window.max)
    with pytest.raises(PipelineError):
        window.check(window.max + 2)


def test_numpy_numbers_are_normalised_and_serialise():
    p = Pipeline(filter=FilterSpec(name="lee", window=np.int64(5), looks=np.float32(2.0)), db_floor=np.float64(-40))
    assert type(p.filter.window) is int and type(p.filter.looks) is float and type(p.db_floor) is float
    assert Pipeline.from_json(p.to_json()) == p


def test_files_written_before_still_load():
    text = ('{"schema": "sarlang.pipeline/1", "band": "VV", "quantity": "auto", "domain": "intensity", '
            '"filter": {"name": "lee", "window": 5, "looks": 2, "damping": 2.0, "snap_exact": false}, '
            '"db": true, "db_floor": -50.0, "stretch": {"low": 2.0, "high": 98.0, "limits": "estimate"}}')
    p = Pipeline.from_json(text)
    assert p.band == "VV" and p.filter.looks == 2.0 and p.stretch == StretchSpec()


def test_save_is_atomic_and_round_trips(tmp_path):
    p = Pipeline().with_filter(name="frost", damping=3.0)
    target = p.save(tmp_path / "p.json")
    assert Pipeline.load(target) == p
    Pipeline().save(target)  # replaces it
    assert Pipeline.load(target) == Pipeline()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["p.json"]  # no temp file left


def test_save_errors_say_what_to_do(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(PipelineError, match=r"a_file.*cannot save the pipeline: .*not a folder"):
        Pipeline().save(tmp_path / "a_file" / "p.json")
    (tmp_path / "a_dir").mkdir()
    with pytest.raises(PipelineError, match=r"cannot save the pipeline: that path is a folder"):
        Pipeline().save(tmp_path / "a_dir")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a_dir", "a_file"]  # no temp file left


def test_describe_names_the_band():
    assert Pipeline(band=0).describe().startswith("band 0 → ")
    assert Pipeline(band=0).describe("Sigma0_VV").startswith("Sigma0_VV → ")


def test_db_quantity_goes_back_to_linear_before_the_filter():
    """Issue 10 case 10: the Pipeline can say the band already holds dB (no log taken twice)."""
    v = np.array([0.0, 10.0, -10.0, np.nan], np.float32)
    np.testing.assert_allclose(to_domain(v, "db", "intensity")[:3], [1.0, 10.0, 0.1], rtol=1e-6)
    np.testing.assert_allclose(to_domain(v, "db", "amplitude")[:3], np.sqrt([1.0, 10.0, 0.1]), rtol=1e-6)
    assert np.isnan(to_domain(v, "db", "intensity")[3])
    assert Pipeline(quantity="db").quantity == "db"
    assert "db" in QUANTITY.choices and "10 log10" in QUANTITY.help
    assert resolve_quantity("db", "unknown", "float32", False) == "db"
