"""The scene session: tiled rendering from cached tiles, scene-wide stretch limits, region
statistics and export, on synthetic GeoTIFFs and the real samples."""

import io
import json
import threading

import numpy as np
import pytest
import rasterio
from PIL import Image

from sarlang_core import synthetic as syn
from sarlang_core.errors import CancelledError, ExportError
from sarlang_core.io import Window, open_scene
from sarlang_core.preprocess import FilterSpec, Pipeline, StretchSpec, apply_filter, stretch_to_uint8, to_db
from sarlang_core.progress import CancelToken
from sarlang_core.services import SceneSession
from sarlang_core.services.export import export_processed, read_pipeline_tag

ALL_FILTERS = [FilterSpec("refined-lee"), FilterSpec("boxcar", 5), FilterSpec("median", 5), FilterSpec("lee", 7, 2.0),
               FilterSpec("frost", 5, damping=2.0), FilterSpec("gamma-map", 5, 1.0), FilterSpec("none")]


@pytest.fixture
def session(sar_scene):
    s = SceneSession.open(sar_scene[0], tile=96)  # small tiles: many tile seams in a 512² scene
    yield s
    s.close()


@pytest.mark.parametrize("spec", ALL_FILTERS, ids=lambda f: f.name)
def test_tiled_windows_equal_whole_image_filtering(session, sar_scene, spec):
    _, data = sar_scene
    pipe = Pipeline(band="VH", filter=spec, db=False, stretch=None)
    win = Window(37, 61, 301, 250)   # crosses several 96-px tile seams and no image border
    got = session.values(pipe, 0, win)
    whole = apply_filter(spec.name, data[1], window=spec.effective_window, looks=spec.looks, damping=spec.damping)
    np.testing.assert_array_equal(got, whole[61:311, 37:338])


def test_windows_beyond_the_raster_are_nan(session, sar_scene):
    pipe = Pipeline(db=False, stretch=None)
    got = session.values(pipe, 0, Window(480, 480, 64, 64))
    assert np.isnan(got[32:, :]).all() and np.isnan(got[:, 32:]).all()
    assert not np.isnan(got[:32, :32]).any()


def test_panning_over_cached_tiles_never_refilters_and_stretch_only_restretches(session):
    pipe = Pipeline()
    session.render(pipe, 0, Window(0, 0, 300, 300))
    misses = session.tiles.cache.misses
    session.render(pipe, 0, Window(10, 20, 250, 250))                       # pan inside cached tiles
    session.render(pipe.with_(stretch=StretchSpec(5, 95)), 0, Window(0, 0, 300, 300))  # slider
    session.render(pipe.with_(db=False), 0, Window(0, 0, 300, 300))         # dB toggle
    assert session.tiles.cache.misses == misses
    session.render(pipe.with_filter(name="lee"), 0, Window(0, 0, 300, 300))  # a new filter filters
    assert session.tiles.cache.misses > misses


@pytest.fixture
def small_estimates(monkeypatch):
    """Estimate limits on the 1:2 overview of the 512² test scene (a real scene's is ~1 MP)."""
    import sarlang_core.services.scene_session as ss
    monkeypatch.setattr(ss, "ESTIMATE_PIXELS", 256 * 256)


def test_stretch_limits_are_scene_wide_not_per_viewport(session, small_estimates):
    pipe = Pipeline()
    a = session.render(pipe, 0, Window(0, 0, 128, 128))
    b = session.render(pipe, 0, Window(300, 300, 200, 200))
    c = session.render(pipe, 2, Window(0, 0, 64, 64))
    assert a.limits == b.limits == c.limits
    assert a.limits.mode == "estimate" and a.limits.level > 0
    assert "estimated from overview" in a.limits.describe()
    # same value -> same grey level wherever it is shown
    np.testing.assert_array_equal(a.image, stretch_to_uint8(a.values, a.limits.lo, a.limits.hi))


def test_exact_limits_match_full_resolution_percentiles(session, sar_scene, small_estimates):
    _, data = sar_scene
    pipe = Pipeline(band=0, stretch=StretchSpec(2, 98, "exact"))
    seen = []
    limits = session.limits(pipe, progress=seen.append)
    whole = to_db(apply_filter("refined-lee", data[0]), "intensity", -50.0)
    lo, hi = np.percentile(whole, [2, 98])
    grey = (hi - lo) / 255
    assert limits.mode == "exact" and limits.pixels == 512 * 512
    assert limits.lo == pytest.approx(lo, abs=grey / 20) and limits.hi == pytest.approx(hi, abs=grey / 20)
    assert seen and seen[-1].done == seen[-1].total
    est = session.limits(pipe.with_(stretch=StretchSpec(2, 98)))
    assert est.mode == "estimate" and abs(est.lo - lo) < 3.0  # the estimate is close, and labelled as such


def test_region_statistics(tmp_path):
    flat = syn.speckle(np.full((200, 200), 0.1, np.float32), 1.0, seed=3)
    path = syn.write_scene(tmp_path / "flat.tif", flat, overviews=())
    s = SceneSession.open(path)
    pair = s.region_stats(Pipeline(), Window(20, 20, 160, 160))
    s.close()
    assert pair.before.pixels == 160 * 160
    assert pair.before.enl == pytest.approx(1.0, rel=0.1)   # single-look speckle
    assert pair.after.enl > 8 * pair.before.enl            # refined Lee: ~10x at L = 1
    assert pair.after.mean == pytest.approx(pair.before.mean, rel=0.05)
    assert pair.before.mean_db == pytest.approx(10 * np.log10(pair.before.mean))


def test_export_matches_the_view_and_records_the_pipeline(session, sar_scene, tmp_path):
    pipe = Pipeline(band="VV", filter=FilterSpec("lee", 5, 2.0))
    out = export_processed(session, pipe, tmp_path / "out.tif", block=200)
    view = session.render(pipe, 0, Window(100, 150, 256, 200))
    with rasterio.open(out) as ds, rasterio.open(sar_scene[0]) as src:
        assert ds.crs == src.crs and ds.transform == src.transform and ds.dtypes[0] == "uint8"
        assert ds.overviews(1)                                   # opens fast anywhere
        assert ds.block_shapes[0] == (256, 256)
        np.testing.assert_array_equal(ds.read(1, window=rasterio.windows.Window(100, 150, 256, 200)), view.image)
        stretch = json.loads(ds.tags()["SARLANG_STRETCH"])
    assert read_pipeline_tag(out) == pipe
    assert stretch["lo"] == view.limits.lo


def test_export_float32_without_stretch(session, sar_scene, tmp_path):
    pipe = Pipeline(band=1, filter=FilterSpec("refined-lee"), db=False, stretch=None)
    out = export_processed(session, pipe, tmp_path / "f.tif")
    with rasterio.open(out) as ds:
        assert ds.dtypes[0] == "float32"
        np.testing.assert_array_equal(ds.read(1), apply_filter("refined-lee", sar_scene[1][1]))


def test_export_never_overwrites_the_input_and_leaves_nothing_on_cancel(session, sar_scene, tmp_path):
    path = sar_scene[0]
    before = path.read_bytes()
    with pytest.raises(ExportError):
        export_processed(session, Pipeline(), path, overwrite=True)
    assert path.read_bytes() == before
    token = CancelToken()
    calls = []

    def progress(p):
        calls.append(p)
        if p.stage == "export" and p.done >= 2:
            token.cancel()

    with pytest.raises(CancelledError):
        export_processed(session, Pipeline(), tmp_path / "c.tif", block=128, progress=progress, cancel=token)
    assert list(tmp_path.iterdir()) == []


def test_concurrent_renders_from_threads_agree(session):
    pipe = Pipeline()
    expected = session.render(pipe, 1, Window(0, 0, 256, 256)).image
    session.tiles.cache.clear()
    results, errors = [], []

    def worker():
        try:
            results.append(session.render(pipe, 1, Window(0, 0, 256, 256)).image)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_real_samples_open_filter_and_export(real_sar_dir, tmp_path):
    iq = np.load(real_sar_dir / "merlin_test_image_data.npy")
    slc = (iq[..., 0] + 1j * iq[..., 1]).astype(np.complex64)
    path = syn.write_scene(tmp_path / "slc.tif", slc[np.newaxis], overviews=())
    s = SceneSession.open(path)
    assert s.scene.is_complex
    key = s.filter_key(Pipeline())
    assert key.quantity == "intensity" and key.complex_as == "intensity"
    raw = s.values(Pipeline(filter=FilterSpec("none"), db=False, stretch=None), 0, Window(0, 0, 256, 256))
    np.testing.assert_allclose(raw, iq[..., 0] ** 2 + iq[..., 1] ** 2, rtol=1e-5)
    pair = s.region_stats(Pipeline(), Window(0, 0, 256, 256))
    assert pair.after.enl > 2 * pair.before.enl
    out = export_processed(s, Pipeline(), tmp_path / "slc_out.tif")
    s.close()
    with rasterio.open(out) as ds:
        img = ds.read(1)
    assert img.shape == (256, 256) and img.std() > 20

    png = real_sar_dir / "deepdespeckling_sar2sar_noisy.png"
    s = SceneSession.open(png)
    r = s.render(Pipeline(), 0, Window(0, 0, s.scene.width, s.scene.height))
    assert r.image.shape == (s.scene.height, s.scene.width) and r.image.std() > 20
    out = export_processed(s, Pipeline(), tmp_path / "png_out.tif")
    s.close()
    with open_scene(out) as sc:
        assert (sc.width, sc.height) == (1000, 500) or (sc.height, sc.width) == (1000, 500)


def test_closing_while_a_render_runs_waits_for_it(sar_scene, tmp_path):
    """Closing a scene under a running read used to crash the process inside GDAL."""
    s = SceneSession.open(sar_scene[0], tile=64)
    started = threading.Event()
    results = []

    def export():
        def progress(p):
            started.set()
        results.append(export_processed(s, Pipeline(filter=FilterSpec("median", 7)), tmp_path / "o.tif",
                                        block=128, progress=progress))

    t = threading.Thread(target=export)
    t.start()
    started.wait(30)
    s.close()                      # returns at once; the export still owns the scene
    t.join(60)
    assert results and results[0].exists()
    with pytest.raises(CancelledError):
        s.render(Pipeline(), 0, Window(0, 0, 16, 16))   # and after it, the session is closed


def test_view_window_covers_the_visible_rect_at_the_zoom_level(session):
    scene = session.scene
    level, win = session.view_window((100, 60, 200, 100), 1.0)
    assert level == 0 and win == Window(100, 60, 200, 100)
    # zoomed out 4x: level factor 4, the rect plus 10 % either side, snapped outwards
    level, win = session.view_window((100, 60, 200, 100), 0.25, 0.1)
    f = scene.levels[level].factor
    assert f == 4 and win == Window(20, 12, 60, 31)   # x 80..320 -> 20..80, y 50..170 -> 12..43
    # a margin never leaves the scene; nothing of the scene in view gives no window
    assert session.view_window((0, 0, 512, 512), 1.0, 0.5) == (0, Window(0, 0, 512, 512))
    assert session.view_window((600, 600, 50, 50), 1.0)[1] is None


def test_display_range_is_the_stretch_or_the_renders_own_span(session):
    win = Window(0, 0, 64, 64)
    stretched = session.render(Pipeline(), 0, win)
    assert stretched.display_range == (stretched.limits.lo, stretched.limits.hi)
    plain = session.render(Pipeline(stretch=None), 0, win)
    assert plain.limits is None
    assert plain.display_range == (float(np.nanmin(plain.values)), float(np.nanmax(plain.values)))


def test_streamed_blocks_match_cached_tiles(session):
    key = session.filter_key(Pipeline())
    win = Window(90, 30, 100, 70)
    streamed = session.tiles.submit_block(key, 0, win).result()
    assert np.allclose(streamed, session.tiles.window(key, 0, win), equal_nan=True)


def test_estimate_without_overviews_reads_a_bounded_number_of_pixels(make_scene, monkeypatch):
    """Issue 10 case 11: a scene without overviews was estimated from its full-resolution level
    read whole (1.3 GB at 8k). The estimate now samples blocks: count what the reader returns."""
    import sarlang_core.io.gdal_scene as gs
    import sarlang_core.services.scene_session as ss
    monkeypatch.setattr(ss, "SAMPLE_BLOCK", 32)
    monkeypatch.setattr(ss, "ESTIMATE_PIXELS", 64 * 32 ** 2)               # 8 x 8 blocks of 32 px
    monkeypatch.setattr(gs, "MEMORY_PYRAMID_MAX_PIXELS", 0)   # as an 8k scene: no levels in memory
    path, data = make_scene("flat.tif", h=1024, w=1024, bands=1, overviews=())
    s = SceneSession.open(path, tile=128)
    try:
        assert len(s.scene.levels) == 1
        read = []
        real = s.scene.read_padded

        def counting(band=0, window=None, level=0, **kw):
            out = real(band, window, level, **kw)
            read.append(out.size)
            return out

        monkeypatch.setattr(s.scene, "read_padded", counting)
        est = s.limits(Pipeline())
        assert est.mode == "estimate" and est.blocks == 64
        assert "estimated from 64 blocks" in est.describe()
        assert sum(read) <= 2 * ss.ESTIMATE_PIXELS            # not the scene's 1 M pixels
        assert est.pixels == ss.ESTIMATE_PIXELS
        # the sampled blocks are filtered like the export filters them: close to the exact limits
        exact = s.limits(Pipeline(stretch=StretchSpec(limits="exact")))
        assert abs(est.lo - exact.lo) < 1.0 and abs(est.hi - exact.hi) < 1.0
    finally:
        s.close()


def test_sample_windows_cover_the_scene_within_budget():
    from sarlang_core.services.scene_session import sample_windows
    wins = sample_windows(16384, 16384, 1 << 20, 128)
    assert len(wins) == 64 and all(w.inside(16384, 16384) for w in wins)
    assert min(w.col_off for w in wins) < 2048 and max(w.col_off for w in wins) > 14000
    small = sample_windows(100, 50, 1 << 20, 128)          # smaller than a block: clipped to the scene
    assert all(w.width == 100 and w.height == 50 for w in small)


def test_8bit_export_declares_nodata_that_no_valid_pixel_takes(make_scene, tmp_path):
    """Issue 10 case 9: nodata became 0 with no marker, while the darkest ~2 % of valid pixels
    were 0 too. Now valid pixels are 1..255, nodata 0, declared: GIS viewers show it transparent."""
    data = make_sar_bands_with_hole()
    path, _ = make_scene("hole.tif", data=data)
    s = SceneSession.open(path)
    try:
        pipe = Pipeline(band="VV", filter=FilterSpec("boxcar", 3))
        out = export_processed(s, pipe, tmp_path / "hole_out.tif")
        view = s.render(pipe, 0, Window(0, 0, 256, 256))
    finally:
        s.close()
    hole = np.isnan(view.values)
    assert hole[100:140, 60:200].all() and 0.05 < hole.mean() < 0.2
    with rasterio.open(out) as ds:
        assert ds.nodata == 0
        img, mask = ds.read(1), ds.read_masks(1)
        np.testing.assert_array_equal(mask == 0, hole)            # exactly the nodata pixels are masked
        assert (img[~hole] >= 1).all() and (img[hole] == 0).all()
        assert np.count_nonzero(img[~hole] == 1) > 0.01 * (~hole).sum()   # the clipped dark end is 1, not 0
        ov = ds.read(1, out_shape=(64, 64))                       # overviews keep nodata apart too
        assert (ov[30:32, 20:45] == 0).all()
    with Image.open(io.BytesIO(_png_with_alpha(view))) as im:
        assert im.mode == "LA"                                   # the view's PNG: nodata transparent
        np.testing.assert_array_equal(np.asarray(im.getchannel("A")) == 0, hole)


def make_sar_bands_with_hole():
    rng = np.random.default_rng(3)
    data = (rng.gamma(1.0, 1.0, (2, 256, 256)) * 0.1).astype(np.float32)
    data[:, 100:140, 60:200] = np.nan            # a nodata hole (NaN in float data)
    data[:, :, :12] = np.nan                     # and a nodata edge, as in swath borders
    return data


def _png_with_alpha(render) -> bytes:
    from sarlang_core.services.scene_session import png_bytes
    return png_bytes(render)


def test_all_nodata_scene_is_refused_and_leaves_nothing(make_scene, tmp_path):
    data = np.full((1, 128, 128), np.nan, np.float32)
    path, _ = make_scene("empty.tif", data=data, band_descriptions=("VV",))
    s = SceneSession.open(path)
    out_dir = tmp_path / "outs"
    out_dir.mkdir()
    try:
        limits = s.limits(Pipeline())
        assert limits.pixels == 0 and "no valid pixels" in limits.describe()
        with pytest.raises(ExportError, match="every pixel of band VV is nodata"):
            export_processed(s, Pipeline(), out_dir / "empty_out.tif")
    finally:
        s.close()
    assert list(out_dir.iterdir()) == []


def _db_scene(make_scene, name="db.tif", description="Sigma0_VV_db"):
    rng = np.random.default_rng(5)
    linear = (rng.gamma(1.0, 1.0, (1, 192, 192)) * np.linspace(0.02, 0.2, 192)[None, None, :]).astype(np.float32)
    path, _ = make_scene(name, data=(10 * np.log10(linear)).astype(np.float32), band_descriptions=(description,))
    return path, linear[0]


@pytest.mark.parametrize("description", ["Sigma0_VV_db", "VV"], ids=["named-db", "negative-values"])
def test_db_input_is_warned_about_and_the_db_quantity_filters_linear_values(make_scene, description):
    """Issue 10 case 10: dB input went through the chain silently (log of dB: flat grey)."""
    path, linear = _db_scene(make_scene, description=description)
    s = SceneSession.open(path)
    try:
        warned = s.chain_warnings(Pipeline())
        assert warned and "--quantity db" in warned[0]
        assert s.chain_warnings(Pipeline(quantity="db")) == []
        pipe = Pipeline(quantity="db", filter=FilterSpec("boxcar", 5), stretch=None)
        got = s.values(pipe, 0, Window(0, 0, 192, 192))
        want = to_db(apply_filter("boxcar", linear, window=5), "intensity", -50.0)
        np.testing.assert_allclose(got, want, atol=1e-3)        # filtered linear, one log: dB again
        flat = s.limits(Pipeline())                             # the log of dB: everything at the floor
        fixed = s.limits(Pipeline(quantity="db"))
        assert fixed.hi - fixed.lo > 5 and fixed.hi - fixed.lo > 2 * (flat.hi - flat.lo)
    finally:
        s.close()


def test_db_quantity_on_complex_data_is_refused(tmp_path):
    from sarlang_core.errors import PipelineError
    path = tmp_path / "slc.npy"
    np.save(path, (np.ones((32, 32)) + 1j).astype(np.complex64))
    s = SceneSession.open(path)
    try:
        with pytest.raises(PipelineError, match="complex"):
            s.filter_key(Pipeline(quantity="db"))
    finally:
        s.close()


def test_model_image_of_a_scene_without_overviews_is_rendered_in_bounded_strips(make_scene, monkeypatch):
    """Issue 10 case 11's sibling: the chat's whole-scene image read an overview-less scene whole."""
    import sarlang_core.io.gdal_scene as gs
    import sarlang_core.services.model_input as mi
    monkeypatch.setattr(gs, "MEMORY_PYRAMID_MAX_PIXELS", 0)
    monkeypatch.setattr(mi, "STRIP_PIXELS", 64 * 512)
    path, _ = make_scene("flat_model.tif", h=512, w=512, bands=1, overviews=())
    s = SceneSession.open(path, tile=64)
    try:
        biggest = []
        real = s.render

        def counting(pipeline, level, window, cancel=None):
            biggest.append(window.width * window.height)
            return real(pipeline, level, window, cancel)

        monkeypatch.setattr(s, "render", counting)
        got = mi.model_image(s, Pipeline(filter=FilterSpec("boxcar", 3)), max_pixels=128 * 128)
        assert got.image.size == (128, 128) and got.crop == (0.0, 0.0, 512.0, 512.0)
        assert max(biggest) <= mi.STRIP_PIXELS                 # strips, never the whole scene at once
        monkeypatch.setattr(s, "render", real)
        whole = s.render(Pipeline(filter=FilterSpec("boxcar", 3)), 0, Window(0, 0, 512, 512)).image
        np.testing.assert_array_equal(np.asarray(got.image.convert("L")), whole[::4, ::4])
    finally:
        s.close()
