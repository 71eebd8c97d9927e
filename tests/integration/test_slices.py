"""Full-resolution slices through the API, on demo and generated studies.

Values are checked against nibabel's ``as_closest_canonical`` and pydicom's modality LUT,
label slices against nibabel's canonical label map at the same index (so image and
labels line up), origins and spacings against nibabel's affine, and the grid against the
preview's: full index ``n * step`` lies where preview slice ``n`` does.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydicom.data import get_testdata_file

from portal.app import create_app
from portal.config import Settings
from portal.db import migrate
from portal.db.models import Role, Segmentation, Study
from portal.db.session import Database
from portal.services.importer import ImportSettings, import_paths
from portal.services.store import preview_file
from tests.conftest import login, make_user
from tests.support.preview_world import fetch, import_demo, vti
from tests.unit.imaging.test_values import check_hu_at_world_points

AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
DEMO = (
    "MNI152 T1 1mm",
    "MNI152 T1 1mm (LAS on disk)",
    "CT small (pydicom)",
    "CT 512 (pydicom-data)",
    "MR small (pydicom)",  # no segmentation
)
SLOPE, INTERCEPT = 0.5, -1024.0


@dataclass
class World:
    app: Flask
    settings: Settings
    db: Database
    ids: dict[str, int]  # study name -> id; "other" is in a project "rev" is not in
    images: dict[str, Path]  # study name -> its first image file
    labels: dict[str, Path]  # study name -> its label file

    def client(self, user: str = "rev") -> FlaskClient:
        client = self.app.test_client()
        login(client, user)
        return client


def _generated_ct(folder: Path) -> tuple[Path, Path]:
    """A LAS CT (stored int16 with slope 0.5, intercept -1024) and a two-label map."""
    folder.mkdir(parents=True)
    shape = (90, 70, 40)
    rng = np.random.default_rng(7)
    stored = rng.integers(0, 4000, shape).astype(np.int16)
    affine = np.array(
        [[-0.7, 0, 0, 40.0], [0, 0.8, 0, -30.0], [0, 0, 2.5, -50.0], [0, 0, 0, 1.0]]
    )  # LAS
    image = nib.Nifti1Image(stored, affine)
    image.header.set_slope_inter(SLOPE, INTERCEPT)
    path = folder / "ct.nii.gz"
    nib.save(image, path)
    idx = np.indices(shape)
    labels = np.zeros(shape, np.uint8)
    labels[(idx[0] < 30) & (idx[2] > 10)] = 1  # a block at low stored i: the subject's Left
    labels[((idx - np.array([60, 35, 20])[:, None, None, None]) ** 2).sum(0) < 100] = 2
    label_path = folder / "ct-label.nii.gz"
    nib.save(nib.Nifti1Image(labels, affine), label_path)
    return path, label_path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("slices")
    settings = Settings(data_dir=data / "data", secret_key="k")  # default preview_max_dim
    settings.data_dir.mkdir()
    migrate.upgrade(settings.resolved_database_url)
    app = create_app(settings)
    db = app.extensions["portal"].db
    ids, demo = import_demo(db, settings, data / "demo", DEMO)
    images = {d.name: Path(d.image_paths[0]) for d in demo}
    labels = {d.name: Path(d.label_path) for d in demo if d.label_path}
    ct, ct_labels = _generated_ct(data / "generated")
    (ids["LAS CT"],) = import_paths(db, ImportSettings.of(settings), "demo", [ct]).imported
    images["LAS CT"], labels["LAS CT"] = ct, ct_labels
    rgb = Path(str(get_testdata_file("SC_rgb.dcm", download=False)))
    (ids["RGB"],) = import_paths(db, ImportSettings.of(settings), "demo", [rgb]).imported
    (ids["other"],) = import_paths(db, ImportSettings.of(settings), "other", [ct]).imported
    make_user(db, "rev", Role.REVIEWER, ["demo"])
    yield World(app, settings, db, ids, images, labels)
    db.dispose()


def _study(world: World, study_id: int) -> Study:
    with world.db.session() as s:
        study = s.get(Study, study_id)
        assert study is not None
        s.expunge(study)
        return study


def _meta(world: World, study_id: int) -> dict:  # type: ignore[type-arg]
    path = preview_file(world.settings.preview_dir, _study(world, study_id).uid, "meta.json")
    return json.loads(path.read_text())


def _url(study_id: int, axis: str, index: int, kind: str = "values") -> str:
    return f"/api/v1/studies/{study_id}/slices/{axis}/{index}/{kind}.vti"


def _cut(array: np.ndarray, dim: int, index: int) -> np.ndarray:
    return np.take(array, [index], axis=dim)


def _world_of(img: nib.Nifti1Image, dim: int, index: int) -> np.ndarray:
    """RAS position of canonical voxel (0, 0, 0) of slice `index`, by nibabel's affine."""
    voxel = np.zeros(3)
    voxel[dim] = index
    return np.asarray(nib.affines.apply_affine(img.affine, voxel))


@pytest.mark.parametrize("name", ["MNI152 T1 1mm", "MNI152 T1 1mm (LAS on disk)", "LAS CT"])
@pytest.mark.parametrize("axis", list(AXES))
def test_value_and_label_slices_equal_nibabel(world: World, name: str, axis: str) -> None:
    sid = world.ids[name]
    dim = AXES[axis]
    img = nib.as_closest_canonical(nib.load(world.images[name]))
    expected_values = img.get_fdata()
    expected_labels = np.asanyarray(nib.as_closest_canonical(nib.load(world.labels[name])).dataobj)
    table = {lab["value"]: lab["color"] for lab in _meta(world, sid)["labels"]}
    client = world.client()
    size = img.shape[dim]
    for index in (0, size // 3, size // 2, size - 1):
        values = vti(fetch(client, _url(sid, axis, index), {"Accept-Encoding": "gzip"}))
        np.testing.assert_allclose(values.array, _cut(expected_values, dim, index), rtol=1e-6)
        np.testing.assert_allclose(values.spacing_mm, nib.affines.voxel_sizes(img.affine))
        np.testing.assert_allclose(values.origin_mm, _world_of(img, dim, index), atol=1e-4)
        rgba = vti(fetch(client, _url(sid, axis, index, "labels")))
        assert rgba.array.dtype == np.uint8 and rgba.array.shape[3] == 4
        assert rgba.origin_mm == values.origin_mm and rgba.spacing_mm == values.spacing_mm
        wanted = _cut(expected_labels, dim, index)
        assert rgba.array.shape[:3] == wanted.shape
        np.testing.assert_array_equal(rgba.array[..., 3] > 0, wanted > 0)
        for value in np.unique(wanted[wanted > 0]):
            assert (rgba.array[wanted == value][:, :3] == table[int(value)]).all(), value


def test_generated_ct_slices_hold_the_rescaled_floats(world: World) -> None:
    sid = world.ids["LAS CT"]
    values = vti(fetch(world.client(), _url(sid, "axial", 5)))
    assert values.array.dtype == np.float32  # slope 0.5: the halves are kept
    expected = nib.as_closest_canonical(nib.load(world.images["LAS CT"])).get_fdata()[:, :, 5:6]
    np.testing.assert_array_equal(values.array, expected.astype(np.float32))
    assert values.array.min() >= INTERCEPT and np.any(values.array % 1 == 0.5)
    # LAS on disk: canonical i runs the other way, so stored i = 0 is the last sagittal slice.
    stored = nib.load(world.images["LAS CT"]).get_fdata()
    last = vti(fetch(world.client(), _url(sid, "sagittal", stored.shape[0] - 1)))
    np.testing.assert_array_equal(last.array[0], stored[0].astype(np.float32))


@pytest.mark.parametrize("name", ["CT small (pydicom)", "CT 512 (pydicom-data)"])
def test_dicom_ct_slice_is_pydicom_modality_lut(world: World, name: str) -> None:
    if name not in world.ids:
        pytest.skip(f"{name} is not installed")
    sid = world.ids[name]
    values = vti(fetch(world.client(), _url(sid, "axial", 0)))
    assert values.array.dtype == np.int16 and values.array.shape[2] == 1
    checked = check_hu_at_world_points(
        world.images[name], values.array, values.origin_mm, values.spacing_mm
    )
    assert checked > 300
    # Full resolution: every row and column of the file, not the preview's stride.
    rows, columns = (int(v) for v in _meta(world, sid)["source_shape"][:2])
    assert values.array.shape[:2] == (rows, columns)


@pytest.mark.parametrize("axis", list(AXES))
def test_full_index_n_times_step_lies_on_preview_slice_n(world: World, axis: str) -> None:
    for name in ("MNI152 T1 1mm", "CT 512 (pydicom-data)", "LAS CT"):
        if name not in world.ids:
            continue
        sid = world.ids[name]
        meta = _meta(world, sid)
        dim = AXES[axis]
        step = int(meta["step"][dim])
        for n in (0, meta["shape"][dim] // 2, meta["shape"][dim] - 1):
            cut = vti(fetch(world.client(), _url(sid, axis, n * step)))
            preview_position = meta["origin_mm"][dim] + n * meta["spacing_mm"][dim]
            assert cut.origin_mm[dim] == pytest.approx(preview_position, abs=1e-4)
            others = [d for d in range(3) if d != dim]
            for d in others:  # the in-plane corner is the preview's corner
                assert cut.origin_mm[d] == pytest.approx(meta["origin_mm"][d], abs=1e-6)
                assert cut.spacing_mm[d] * meta["step"][d] == pytest.approx(meta["spacing_mm"][d])


def test_meta_gives_the_full_grid_also_for_older_studies(world: World) -> None:
    sid = world.ids["MNI152 T1 1mm (LAS on disk)"]
    img = nib.as_closest_canonical(nib.load(world.images["MNI152 T1 1mm (LAS on disk)"]))
    meta = _meta(world, sid)
    assert meta["source_shape"] == list(img.shape)
    np.testing.assert_allclose(meta["source_spacing_mm"], nib.affines.voxel_sizes(img.affine))
    # As written before the keys existed: the pane's meta fills them in, and keeps them.
    old = {k: v for k, v in meta.items() if k not in ("source_shape", "source_spacing_mm")}
    path = preview_file(world.settings.preview_dir, _study(world, sid).uid, "meta.json")
    path.write_text(json.dumps(old))
    from portal.services import viewer
    from portal.services.auth import Principal
    from tests.integration.test_value_previews import _user

    with world.db.session() as s:
        who = Principal.of(_user(s, "rev"))
        _, without_store = viewer.pane_data(s, who, world.settings.preview_dir, sid)
        _, with_store = viewer.pane_data(
            s, who, world.settings.preview_dir, sid, store_dir=world.settings.store_dir
        )
    for pane_meta in (without_store, with_store):
        assert pane_meta["source_shape"] == meta["source_shape"]
        assert pane_meta["source_spacing_mm"] == meta["source_spacing_mm"]
        assert {k: pane_meta[k] for k in old} == old  # every existing key kept
    assert json.loads(path.read_text()) == meta  # written back whole


def test_etag_gzip_and_caching(world: World) -> None:
    client = world.client()
    sid = world.ids["LAS CT"]
    url = _url(sid, "coronal", 12)
    first = fetch(client, url, {"Accept-Encoding": "gzip"})
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "gzip"
    assert first.headers["Cache-Control"] == "private, max-age=86400"
    assert "Accept-Encoding" in first.headers["Vary"]
    etag = first.headers["ETag"]
    again = fetch(client, url, {"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304 and not again.get_data() and again.headers["ETag"] == etag
    plain = fetch(client, url)
    assert "Content-Encoding" not in plain.headers
    assert plain.get_data() == gzip.decompress(first.get_data())
    # Another index, axis, kind or segmentation is another ETag.
    tags = {
        fetch(client, u).headers["ETag"]
        for u in (
            url,
            _url(sid, "coronal", 13),
            _url(sid, "axial", 12),
            _url(sid, "coronal", 12, "labels"),
        )
    }
    assert len(tags) == 4
    # The kept volumes are .npy files beside the previews, none left half-written.
    full = world.settings.preview_dir / _study(world, sid).uid / "full"
    assert sorted(p.name for p in full.iterdir())[-1] == "values.npy"
    assert not list(full.glob("*.tmp"))
    kept = np.load(full / "values.npy", mmap_mode="r")
    assert kept.flags.f_contiguous and kept.shape == tuple(_meta(world, sid)["source_shape"])


def test_refusals_answer_404_json(world: World) -> None:
    client = world.client()
    sid = world.ids["LAS CT"]
    shape = _meta(world, sid)["source_shape"]
    other_study = _study(world, world.ids["other"])
    with world.db.session() as s:
        other_seg = s.query(Segmentation).filter_by(study_id=other_study.id).first()
        assert other_seg is not None
        other_seg_id = other_seg.id
    refused = [
        _url(sid, "axial", shape[2]),  # one past the last slice
        _url(sid, "sagittal", shape[0]),
        _url(sid, "oblique", 0),
        _url(world.ids["other"], "axial", 0),  # a study "rev" may not see
        _url(world.ids["RGB"], "axial", 0),
        _url(world.ids["RGB"], "axial", 0, "labels"),
        _url(sid, "axial", 0, "labels") + f"?segmentation={other_seg_id}",
        _url(world.ids["MR small (pydicom)"], "axial", 0, "labels"),  # no segmentation
        _url(sid, "axial", 0, "labels") + "?segmentation=999999",
    ]
    for url in refused:
        response = fetch(client, url)
        assert response.status_code == 404, url
        body = response.get_json()
        assert body is not None and body["error"], url
    assert fetch(client, _url(sid, "axial", 0, "labels") + "?segmentation=x").status_code == 400
    # A study one may not see answers like a missing one, whatever else is asked.
    assert fetch(client, _url(world.ids["other"], "axial", 10**6)).status_code == 404
