"""A 4-D NIfTI is one study with a volume selector; each volume is served on demand."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkIOXML import vtkXMLImageDataReader

from portal.app import create_app
from portal.config import Settings
from portal.db import migrate
from portal.db.models import Role
from portal.imaging.preview import build_preview
from portal.imaging.volume import Volume, to_closest_canonical
from portal.imaging.windowing import Window
from portal.services.importer import ImportSettings, import_paths
from tests.conftest import login, make_user

EXAMPLE_4D = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"


def _grey(payload: bytes) -> np.ndarray:
    reader = vtkXMLImageDataReader()
    reader.ReadFromInputStringOn()
    reader.SetInputString(payload)
    reader.Update()
    image = reader.GetOutput()
    values = vtk_to_numpy(image.GetPointData().GetScalars())
    return values.reshape(image.GetDimensions()[::-1]).transpose(2, 1, 0)


def test_each_volume_is_its_own_preview_on_the_first_volumes_window(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", secret_key="k", preview_max_dim=64)
    settings.data_dir.mkdir()
    migrate.upgrade(settings.resolved_database_url)
    app = create_app(settings)
    db = app.extensions["portal"].db
    report = import_paths(db, ImportSettings.of(settings), "fmri", [EXAMPLE_4D])
    (study_id,) = report.imported
    assert any("4-D: 2 volumes" in note for _, note in report.notes)
    make_user(db, "root", Role.ADMIN)
    client = app.test_client()
    login(client, "root")
    detail = client.get(f"/api/v1/studies/{study_id}").get_json()
    assert detail["volume_count"] == 2

    img = nib.load(EXAMPLE_4D)
    frames = np.asanyarray(img.dataobj)
    assert (frames[..., 0] != frames[..., 1]).mean() > 0.3  # two really different volumes
    window = Window.from_level_width(detail["window"]["level"], detail["window"]["width"])
    for t in (0, 1):
        url = (
            f"/api/v1/studies/{study_id}/preview/image.vti"
            if t == 0
            else f"/api/v1/studies/{study_id}/volumes/{t}/image.vti"
        )
        response = client.get(url, headers={"Accept-Encoding": "gzip"}, buffered=True)
        assert response.status_code == 200 and response.headers["Content-Encoding"] == "gzip"
        served = _grey(gzip.decompress(response.data))
        # The reference: nibabel's volume t, previewed on volume 0's window.
        data = np.asanyarray(img.dataobj)[..., t]
        expected = build_preview(
            to_closest_canonical(Volume(data, img.affine)), max_dim=64, window=window
        ).image_u8
        np.testing.assert_array_equal(served, expected)
    assert (settings.preview_dir / detail_uid(db, study_id) / "volumes" / "1.vti.gz").exists()
    assert client.get(f"/api/v1/studies/{study_id}/volumes/2/image.vti").status_code == 404

    # Someone outside the project gets nothing, not even the on-demand read.
    make_user(db, "stranger", Role.REVIEWER)
    other = app.test_client()
    login(other, "stranger")
    assert other.get(f"/api/v1/studies/{study_id}/volumes/1/image.vti").status_code == 404


def detail_uid(db, study_id: int) -> str:  # type: ignore[no-untyped-def]
    from portal.db.models import Study

    with db.session() as s:
        study = s.get(Study, study_id)
        assert study is not None
        return study.uid
