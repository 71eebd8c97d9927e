from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
from flask import Flask

from tests.conftest import login


def _find(client, name: str) -> dict:  # type: ignore[no-untyped-def]
    items = client.get("/api/v1/studies?limit=100").get_json()["items"]
    match = [s for s in items if s["name"] == name]
    assert match, [s["name"] for s in items]
    return client.get(f"/api/v1/studies/{match[0]['id']}").get_json()


def test_study_detail_has_geometry_labels_and_flag(demo_app: Flask) -> None:
    client = demo_app.test_client()
    login(client, "admin")
    detail = _find(client, "MNI152 T1 1mm")
    assert detail["orientation"] == "RAS"
    assert detail["modality"] == "MR"
    assert len(detail["shape"]) == 3 and detail["spacing_mm"] == [1.0, 1.0, 1.0]
    affine = np.array(detail["affine_ras"])
    assert affine.shape == (4, 4) and np.allclose(affine[3], [0, 0, 0, 1])
    labels = detail["segmentations"][0]["labels"]
    assert [(lab["value"], lab["name"]) for lab in labels] == [
        (1, "grey matter"),
        (2, "white matter"),
    ]
    assert all(lab["color"].startswith("#") and len(lab["color"]) == 7 for lab in labels)
    # Label volumes against nibabel's reading of the demo label file (1 mm voxels).
    [label_file] = (demo_app.extensions["portal"].settings.data_dir / "demo-source").rglob(
        "mni152_1mm-label.nii.gz"
    )
    ref = np.asanyarray(nib.load(label_file).dataobj)
    for lab in labels:
        count = int((ref == lab["value"]).sum())
        assert lab["voxel_count"] == count
        assert lab["volume_ml"] == pytest.approx(count / 1000.0, abs=1e-3)
    assert detail["flag"]["status"] in {
        "unreviewed",
        "approved",
        "needs-edit",
        "flagged-for-expert",
    }


def test_previews_are_gzip_vti_and_cacheable(demo_app: Flask) -> None:
    client = demo_app.test_client()
    login(client, "admin")
    detail = _find(client, "MNI152 T1 1mm")
    url = f"/api/v1/studies/{detail['id']}/preview/image.vti"
    zipped = client.get(url, headers={"Accept-Encoding": "gzip"}, buffered=True)
    assert zipped.status_code == 200
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Cache-Control"].startswith("private")
    body = gzip.decompress(zipped.data)
    assert body.startswith(b"<?xml") or body.startswith(b"<VTKFile")
    assert b'type="ImageData"' in body
    plain = client.get(url, headers={"Accept-Encoding": "identity"}, buffered=True)
    assert plain.data == body
    thumb = client.get(f"/api/v1/studies/{detail['id']}/preview/thumb.png", buffered=True)
    assert thumb.data[:8] == b"\x89PNG\r\n\x1a\n"
    mosaic = client.get(f"/api/v1/studies/{detail['id']}/preview/mosaic.png", buffered=True)
    assert mosaic.status_code == 200 and mosaic.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/api/v1/studies/{detail['id']}/preview/meta.json").status_code == 404
