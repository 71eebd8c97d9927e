import base64

import numpy as np
import pytest

from portal.imaging.labels import default_label_table
from portal.imaging.nifti import read_label_nifti, read_nifti
from portal.imaging.preview import Preview, build_preview, label_surfaces
from portal.imaging.surfaces import MAX_TRIANGLES
from portal.imaging.volume import Volume


def _decode(encoded: dict) -> np.ndarray:
    raw = base64.b64decode(encoded["bvals"])
    return np.frombuffer(raw, dtype=encoded["dtype"]).reshape(encoded["shape"])


def _check_mesh(preview: Preview, surface: dict) -> tuple[np.ndarray, np.ndarray]:
    points = _decode(surface["state"]["mesh"]["points"])
    polys = _decode(surface["state"]["mesh"]["polys"])
    assert points.dtype == np.float32 and polys.dtype == np.int32
    assert points.ndim == 1 and points.size % 3 == 0 and points.size > 0
    xyz = points.reshape(-1, 3)
    # Legacy cell layout: [3, a, b, c, 3, ...] with valid point ids.
    triangles = polys.reshape(-1, 4)
    assert (triangles[:, 0] == 3).all()
    assert triangles[:, 1:].min() >= 0 and triangles[:, 1:].max() < len(xyz)
    # Inside the physical extent of the preview (voxel centres +- half a voxel).
    spacing = np.asarray(preview.spacing_mm)
    low = np.asarray(preview.origin_mm) - spacing / 2
    high = np.asarray(preview.origin_mm) + (np.asarray(preview.shape) - 0.5) * spacing
    assert (xyz >= low - 1e-3).all() and (xyz <= high + 1e-3).all()
    return xyz, triangles


@pytest.fixture(scope="module")
def mni_2mm_preview(studies_by_name) -> Preview:
    study = studies_by_name["MNI152 T1 2mm"]
    labels, _ = read_label_nifti(study.label_path)
    return build_preview(read_nifti(study.image_paths[0]), labels)


def test_mni_tissue_surfaces(mni_2mm_preview):
    table = default_label_table([1, 2], {1: "grey matter", 2: "white matter"})
    surfaces = label_surfaces(mni_2mm_preview, table)
    assert [(s["value"], s["name"]) for s in surfaces] == [(1, "grey matter"), (2, "white matter")]
    assert surfaces[0]["color"] == [c / 255 for c in table[0].color]
    for surface in surfaces:
        _, triangles = _check_mesh(mni_2mm_preview, surface)
        assert 1000 < len(triangles) <= MAX_TRIANGLES * 1.2


def test_box_touching_the_border_is_closed_and_placed_in_world():
    labels = np.zeros((10, 12, 8), np.uint16)
    labels[:4, 3:9, 2:6] = 5  # touches the i = 0 face of the volume
    affine = np.diag([2.0, 1.0, 3.0, 1.0])
    affine[:3, 3] = (-10.0, 5.0, 20.0)
    preview = build_preview(Volume(labels.astype(np.int16), affine), labels)
    (surface,) = label_surfaces(preview, [])
    assert surface["value"] == 5 and surface["name"] == "label 5"
    xyz, triangles = _check_mesh(preview, surface)
    # The box spans voxels i 0..3, j 3..8, k 2..5; its surface lies between them.
    centre = xyz.mean(axis=0)
    np.testing.assert_allclose(centre, (-10 + 1.5 * 2, 5 + 5.5, 20 + 3.5 * 3), atol=0.6)
    edges = np.sort(
        np.concatenate([triangles[:, [1, 2]], triangles[:, [2, 3]], triangles[:, [1, 3]]]), axis=1
    )
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()  # closed: every edge shared by exactly two triangles


def test_no_labels_no_surfaces():
    volume = Volume(np.zeros((4, 4, 4), np.int16), np.eye(4))
    assert label_surfaces(build_preview(volume), []) == []
    assert label_surfaces(build_preview(volume, np.zeros((4, 4, 4), np.uint16)), []) == []
