"""MGH/MGZ, NRRD and Slicer .seg.nrrd through the importer, geometry checked against nibabel."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from sqlalchemy import select

from portal.config import Settings
from portal.db.models import Study
from portal.db.session import Database
from portal.services.discovery import discover
from portal.services.importer import import_paths
from tests.integration.test_importer import _import_settings
from tests.unit.imaging.test_nrrd import SEGMENT_KEYS, _write_nrrd

MGZ = Path(nib.__file__).parent / "tests" / "data" / "test.mgz"


@pytest.fixture(params=["sqlite"])
def database_url(tmp_path: Path) -> str:  # one database kind is enough for formats
    from portal.db import migrate

    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    migrate.upgrade(url)
    return url


def test_mgz_imports_with_nibabels_geometry(db: Database, settings: Settings) -> None:
    report = import_paths(db, _import_settings(settings), "p", [MGZ])
    assert report.refused == [] and len(report.imported) == 1
    ref = nib.load(MGZ)
    with db.session() as s:
        study = s.get(Study, report.imported[0])
        assert study is not None
        assert study.shape == ref.shape[:3]
        assert np.allclose(study.affine_ras, ref.affine, atol=1e-4)
        assert study.volumes[0].format == "mgh"


def test_nrrd_with_its_slicer_segmentation(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    ref = nib.load(_mni_2mm(tmp_path))
    data = np.asanyarray(ref.dataobj)[20:60, 20:70, 20:50].astype(np.int16)
    affine = ref.affine.copy()
    affine[:3, 3] = ref.affine[:3, :3] @ [20, 20, 20] + ref.affine[:3, 3]
    labels = np.zeros(data.shape, np.uint8)
    labels[data > np.percentile(data, 70)] = 1
    labels[:4, :4, :4] = 2
    folder = tmp_path / "in"
    folder.mkdir()
    _write_nrrd(folder / "brain.nrrd", data, affine, "left-posterior-superior")
    _write_nrrd(
        folder / "brain.seg.nrrd", labels, affine, "left-posterior-superior", **SEGMENT_KEYS
    )
    (folder / "orphan.seg.nrrd").write_bytes((folder / "brain.seg.nrrd").read_bytes())

    found = discover([folder])
    sources, refused = found.sources, found.refused
    assert [(s.name, s.label_path.name if s.label_path else None) for s in sources] == [
        ("brain", "brain.seg.nrrd")
    ]
    assert [Path(f).name for f, _ in refused] == ["orphan.seg.nrrd"]

    report = import_paths(db, _import_settings(settings), "p", [folder / "brain.nrrd"])
    assert report.refused == [] and len(report.imported) == 1
    with db.session() as s:
        study = s.scalar(select(Study).where(Study.id == report.imported[0]))
        assert study is not None
        assert np.allclose(study.affine_ras, affine, atol=1e-4)
        assert study.orientation == "".join(nib.aff2axcodes(affine))
        seg_labels = [(lab.value, lab.name, lab.color) for lab in study.segmentations[0].labels]
    assert seg_labels == [(1, "left ventricle", "#8040ff"), (2, "tumour", "#ff0000")]


def _mni_2mm(tmp_path: Path) -> Path:
    from nilearn.datasets import load_mni152_template

    path = tmp_path / "mni2.nii.gz"
    nib.save(load_mni152_template(resolution=2), path)
    return path


def test_detached_nrrd_header_imports_with_its_data_file(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """`case.nhdr` + `case.raw.gz`: one study, both files stored, the data file not refused."""
    import nrrd

    ref = nib.load(_mni_2mm(tmp_path))
    data = np.asanyarray(ref.dataobj)[10:70, 10:80, 10:60].astype(np.int16)
    folder = tmp_path / "in"
    folder.mkdir()
    world = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ref.affine  # NRRD in LPS
    nrrd.write(
        str(folder / "case.nhdr"),
        data,
        {
            "space": "left-posterior-superior",
            "space directions": world[:3, :3].T,
            "space origin": world[:3, 3],
            "encoding": "gzip",
        },
        detached_header=True,
    )
    assert sorted(p.name for p in folder.iterdir()) == ["case.nhdr", "case.raw.gz"]
    report = import_paths(db, _import_settings(settings), "p", [folder])
    assert report.refused == [] and len(report.imported) == 1
    with db.session() as s:
        study = s.get(Study, report.imported[0])
        assert study is not None
        assert study.shape == data.shape
        np.testing.assert_allclose(study.affine_ras, ref.affine, atol=1e-4)
        assert len(study.volumes[0].files) == 2
        assert study.value_max == float(data.max())
