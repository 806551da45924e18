"""Shared fixtures for core tests: synthetic SAR GeoTIFFs on disk, the real samples, a private cache.

    def test_x(make_scene):
        path, data = make_scene("s.tif", h=256, w=256, bands=2)   # data: (B, H, W) float32 intensity
    def test_y(sar_scene):       # session-wide 512 x 512 VV/VH scene with overviews 2, 4, 8 (read only!)
        path, data = sar_scene
    def test_z(real_sar_dir):    # ../shared/data/real_sar, or the test is skipped
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from sarlang_core import synthetic as syn

REPO = Path(__file__).resolve().parents[2]


def shared_root() -> Path:
    """$SARLANG_SHARED, else the ``shared`` folder beside the repository."""
    env = os.environ.get("SARLANG_SHARED")
    return Path(env) if env else REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every core test gets its own overview cache: nothing lands in the user's real cache."""
    monkeypatch.setenv("SARLANG_CACHE_DIR", str(tmp_path / "sarlang-cache"))


def make_sar_bands(h: int, w: int, bands: int = 2, looks: float = 1.0, seed: int = 0) -> np.ndarray:
    """(bands, H, W) float32 speckled intensity: VV-like, VH-like, then VV-like again."""
    pols = ["VV", "VH"]
    out = []
    for b in range(bands):
        refl = syn.reflectivity_map(h, w, seed, pol=pols[b % 2])
        out.append(syn.speckle(refl, looks, seed + 100 + b))
    return np.stack(out)


@pytest.fixture
def make_scene(tmp_path):
    """Factory: ``make_scene(name, h=256, w=256, bands=2, looks=1, seed=0, data=None, **write_scene_kw)``
    writes a GeoTIFF in tmp_path (default descriptions VV/VH, overviews 2/4/8) -> (path, data)."""

    def _make(name: str = "scene.tif", h: int = 256, w: int = 256, bands: int = 2, looks: float = 1.0,
              seed: int = 0, data: np.ndarray = None, **kw):
        if data is None:
            data = make_sar_bands(h, w, bands, looks, seed)
        count = data.shape[0] if data.ndim == 3 else 1
        kw.setdefault("band_descriptions", tuple(["VV", "VH"][i % 2] for i in range(count)))
        path = syn.write_scene(tmp_path / name, data, **kw)
        return path, data

    return _make


@pytest.fixture(scope="session")
def sar_scene(tmp_path_factory):
    """A 512 x 512 two-band (VV, VH) float32 GeoTIFF, EPSG:32631, tiled 256, overviews 2/4/8."""
    path = tmp_path_factory.mktemp("sar") / "sar_scene.tif"
    data = make_sar_bands(512, 512, 2, looks=1, seed=7)
    syn.write_scene(path, data, band_descriptions=("Sigma0_VV", "Sigma0_VH"), tags={"quantity": "intensity"})
    return path, data


@pytest.fixture
def real_sar_dir() -> Path:
    d = shared_root() / "data" / "real_sar"
    if not d.is_dir():
        pytest.skip(f"real SAR samples not available ({d} is absent; set SARLANG_SHARED)")
    return d


def write_gcp_scene(path: Path) -> list:
    """A 100 x 100 float32 GeoTIFF placed by four control points only (EPSG:4326); returns the GCPs."""
    import rasterio
    from rasterio.control import GroundControlPoint as GCP

    gcps = [GCP(0, 0, 3.0, 51.0), GCP(0, 99, 3.2, 51.0), GCP(99, 0, 3.0, 50.9), GCP(99, 99, 3.2, 50.9)]
    with rasterio.open(path, "w", driver="GTiff", width=100, height=100, count=1, dtype="float32",
                       gcps=gcps, crs="EPSG:4326") as dst:
        dst.write(np.ones((1, 100, 100), np.float32))
    return gcps
