"""Data types, .npy layouts, PNG/JPEG chips, and the real SAR samples wrapped as GeoTIFFs."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from PIL import Image

from sarlang_core import synthetic as syn
from sarlang_core.io import Window, open_scene


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32", "float64"])
def test_real_dtypes_read_as_float32(make_scene, dtype):
    rng = np.random.default_rng(1)
    hi = {"uint8": 255, "uint16": 60000, "int16": 30000}.get(dtype, 1000)
    data = rng.integers(0, hi, (1, 40, 50)).astype(dtype)
    if dtype.startswith("float"):
        data = (data * 0.37).astype(dtype)
    path, _ = make_scene(f"{dtype}.tif", data=data, dtype=dtype, overviews=())
    with open_scene(path) as scene:
        assert scene.dtype == dtype and not scene.is_complex
        out = scene.read(0)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, data[0].astype(np.float32))


@pytest.mark.parametrize("dtype", ["uint16", "int16"])
def test_integer_nodata_becomes_nan(make_scene, dtype):
    data = np.arange(1, 101, dtype=dtype).reshape(1, 10, 10)
    data[0, 2, 3] = 0
    path, _ = make_scene(f"nd_{dtype}.tif", data=data, dtype=dtype, nodata=0, overviews=())
    with open_scene(path) as scene:
        assert scene.nodata == 0.0
        out = scene.read(0)
        assert np.isnan(out[2, 3]) and np.isnan(out).sum() == 1 and out[0, 0] == 1


def test_nan_and_inf_are_masked(make_scene):
    data = np.ones((1, 8, 8), np.float32)
    data[0, 1, 1], data[0, 2, 2], data[0, 3, 3] = np.nan, np.inf, -np.inf
    data[0, 4, 4] = -9999
    path, _ = make_scene("naninf.tif", data=data, nodata=-9999, overviews=())
    with open_scene(path) as scene:
        assert np.isnan(scene.read(0)).sum() == 4


@pytest.mark.parametrize("dtype", ["complex_int16", "complex64"])
def test_complex_reads_intensity_and_amplitude(make_scene, dtype):
    rng = np.random.default_rng(3)
    i = rng.integers(-2000, 2000, (64, 48))
    q = rng.integers(-2000, 2000, (64, 48))
    z = (i + 1j * q).astype(np.complex64)
    path, _ = make_scene(f"{dtype}.tif", data=z[None], dtype=dtype, overviews=())
    with open_scene(path) as scene:
        assert scene.is_complex and scene.dtype == dtype and scene.quantity == "intensity"
        intensity = (i.astype(np.float64) ** 2 + q.astype(np.float64) ** 2)
        np.testing.assert_allclose(scene.read(0), intensity, rtol=1e-6)
        np.testing.assert_allclose(scene.read(0, Window(3, 4, 10, 9), complex_as="amplitude"),
                                   np.sqrt(intensity)[4:13, 3:13], rtol=1e-6)
        # in-memory overviews of complex data hold mean intensity (a multilook), not mean complex
        assert scene.overview_source == "none" or np.allclose(
            scene.read(0, None, 1)[0, 0], intensity[:2, :2].mean(), rtol=1e-5)


def test_npy_layouts(tmp_path):
    rng = np.random.default_rng(0)
    a2 = rng.random((30, 40)).astype(np.float32)
    bhw = rng.random((3, 30, 40)).astype(np.float32)
    hwb = np.moveaxis(bhw, 0, -1).copy()
    iq = rng.standard_normal((30, 40, 2)).astype(np.float32)
    cz = (iq[..., 0] + 1j * iq[..., 1]).astype(np.complex64)
    for name, arr in (("a2", a2), ("bhw", bhw), ("hwb", hwb), ("iq", iq), ("cz", cz)):
        np.save(tmp_path / f"{name}.npy", arr)
    with open_scene(tmp_path / "a2.npy") as s:
        assert (s.width, s.height, s.count, s.dtype) == (40, 30, 1, "float32")
        np.testing.assert_array_equal(s.read(0), a2)
        assert s.crs is None and s.transform == Affine.identity() and not s.georeferenced
    for name in ("bhw", "hwb"):
        with open_scene(tmp_path / f"{name}.npy") as s:
            assert (s.width, s.height, s.count) == (40, 30, 3)
            np.testing.assert_array_equal(s.read(2, Window(5, 6, 7, 8)), bhw[2, 6:14, 5:12])
    for name in ("iq", "cz"):
        with open_scene(tmp_path / f"{name}.npy") as s:
            assert s.is_complex and s.dtype == "complex64" and s.count == 1
            np.testing.assert_allclose(s.read(0), iq[..., 0] ** 2 + iq[..., 1] ** 2, rtol=1e-6)


@pytest.mark.filterwarnings("ignore:Mean of empty slice")
def test_npy_is_memory_mapped_and_gets_memory_levels(tmp_path):
    data = syn.speckle(syn.reflectivity_map(600, 520, 5), 1, 6)
    data[10:20, 10:20] = np.nan
    np.save(tmp_path / "big.npy", data)
    with open_scene(tmp_path / "big.npy") as s:
        assert isinstance(s._data.base, np.memmap) or isinstance(s._data, np.memmap)
        assert s.overview_source == "memory"
        assert [(lv.factor, lv.width, lv.height) for lv in s.levels] == [(1, 520, 600), (2, 260, 300), (4, 130, 150)]
        lv2 = s.read(0, None, 2)
        np.testing.assert_allclose(lv2, _nan_block_mean(data, 4), rtol=1e-5)
        np.testing.assert_array_equal(s.read_padded(0, Window(125, 145, 10, 10), 2)[:5, :5], lv2[145:, 125:])


def _nan_block_mean(a: np.ndarray, f: int) -> np.ndarray:
    h, w = a.shape
    padded = np.full((-(-h // f) * f, -(-w // f) * f), np.nan, np.float64)
    padded[:h, :w] = a
    return np.nanmean(padded.reshape(padded.shape[0] // f, f, padded.shape[1] // f, f), axis=(1, 3))


@pytest.mark.filterwarnings("ignore:Mean of empty slice")
def test_memory_levels_for_small_geotiff_without_overviews(make_scene):
    path, data = make_scene("noovr.tif", h=301, w=602, bands=1, overviews=())
    with open_scene(path) as s:
        assert s.overview_source == "memory"
        # ceil sizes as GDAL; edge blocks average only the pixels that exist
        assert [(lv.width, lv.height) for lv in s.levels] == [(602, 301), (301, 151), (151, 76)]
        np.testing.assert_allclose(s.read(0, None, 2), _nan_block_mean(data[0], 4), rtol=1e-5)
        np.testing.assert_allclose(s.read(0, None, 1), _nan_block_mean(data[0], 2), rtol=1e-5)


def test_png_grayscale_16bit_and_rgb_gray(tmp_path):
    rng = np.random.default_rng(2)
    g8 = rng.integers(0, 256, (50, 70), dtype=np.uint8)
    Image.fromarray(g8).save(tmp_path / "g8.png")
    g16 = rng.integers(0, 65535, (50, 70)).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    Image.fromarray(np.dstack([g8, g8, g8])).save(tmp_path / "rgbgray.png")
    alpha = np.full_like(g8, 255)
    alpha[0, 0] = 0
    Image.fromarray(np.dstack([g8, g8, g8, alpha])).save(tmp_path / "rgba.png")
    Image.fromarray(g8).save(tmp_path / "g8.jpg", quality=95)
    for name, expect in (("g8.png", g8), ("g16.png", g16), ("rgbgray.png", g8)):
        with open_scene(tmp_path / name) as s:
            assert (s.count, s.width, s.height) == (1, 70, 50)
            np.testing.assert_array_equal(s.read(0), expect.astype(np.float32))
    with open_scene(tmp_path / "g16.png") as s:
        assert s.dtype == "uint16"
    with open_scene(tmp_path / "rgba.png") as s:
        out = s.read(0)
        assert np.isnan(out[0, 0]) and np.isnan(out).sum() == 1
    with open_scene(tmp_path / "g8.jpg") as s:
        assert s.count == 1 and np.abs(s.read(0) - g8).mean() < 10


# ---- the real samples in ../shared/data/real_sar -----------------------------------------------

def test_real_slc_npy_directly_and_as_complex_geotiff(real_sar_dir, tmp_path):
    iq = np.load(real_sar_dir / "merlin_test_image_data.npy")
    assert iq.shape == (256, 256, 2)
    intensity = iq[..., 0].astype(np.float64) ** 2 + iq[..., 1].astype(np.float64) ** 2
    with open_scene(real_sar_dir / "merlin_test_image_data.npy") as s:
        assert s.is_complex and s.dtype == "complex64"
        np.testing.assert_allclose(s.read(0), intensity, rtol=1e-5)
    z = (iq[..., 0] + 1j * iq[..., 1]).astype(np.complex64)
    tr = Affine(2.3, 0.0, 350000.0, 0.0, -13.9, 4830000.0)  # a single-look-like pixel spacing
    path = syn.write_scene(tmp_path / "merlin_slc.tif", z, crs="EPSG:32633", transform=tr,
                           band_descriptions=("HH",), overviews=())
    with open_scene(path) as s:
        assert s.is_complex and s.dtype == "complex64" and s.bands[0].polarisation == "HH"
        np.testing.assert_allclose(s.read(0), intensity, rtol=1e-5)
        np.testing.assert_allclose(s.read(0, complex_as="amplitude"), np.sqrt(intensity), rtol=1e-5)
        lon, lat = s.pixel_to_lonlat(128, 128)
        assert 13.0 < lon < 13.3 and 43.5 < lat < 43.7  # 150 km west of 15 E, ~4830 km north
        # single-look speckle: intensity's coefficient of variation is about 1 or more
        v = s.read(0)
        assert v.std() / v.mean() > 0.8


def test_real_png_directly_and_wrapped(real_sar_dir, tmp_path):
    png = real_sar_dir / "deepdespeckling_sar2sar_noisy.png"
    pixels = np.asarray(Image.open(png).convert("L"))
    with open_scene(png) as s:
        assert s.count == 1 and (s.height, s.width) == pixels.shape and s.dtype == "uint8"
        np.testing.assert_array_equal(s.read(0), pixels.astype(np.float32))
        assert s.overview_source == "memory" and len(s.levels) >= 2
    path = syn.write_scene(tmp_path / "sar2sar.tif", pixels[None], dtype="uint8", overviews=(2, 4),
                           band_descriptions=("Amplitude_VV",))
    with open_scene(path) as s:
        assert s.quantity == "amplitude" and s.bands[0].polarisation == "VV"
        np.testing.assert_array_equal(s.read(0, Window(100, 50, 300, 200)), pixels[50:250, 100:400])
        assert s.levels[1].width == -(-pixels.shape[1] // 2) and s.georeferenced


def test_large_npy_gets_no_memory_levels(tmp_path, monkeypatch):
    from sarlang_core.io import array_scene
    monkeypatch.setattr(array_scene, "ARRAY_PYRAMID_MAX_PIXELS", 1000)
    np.save(tmp_path / "wide.npy", np.ones((100, 400), np.float32))
    with open_scene(tmp_path / "wide.npy") as s:
        assert s.overview_source == "none" and len(s.levels) == 1
        assert any("too large" in w for w in s.warnings)


def test_concurrent_first_reads_of_memory_levels(tmp_path):
    import threading
    data = syn.speckle(syn.reflectivity_map(700, 900, 2), 1, 3)
    np.save(tmp_path / "m.npy", data)
    scene = open_scene(tmp_path / "m.npy")
    out = [None] * 4

    def read(i):
        out[i] = scene.read(0, None, 1 + i % 2)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_allclose(out[0], _nan_block_mean(data, 2), rtol=1e-5)
    np.testing.assert_allclose(out[1], _nan_block_mean(data, 4), rtol=1e-5)
    scene.close()
