"""Import details: versions of a changed source, reader notes, sidecar label tables,
resampling on request, stored value range and window, colour studies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from sqlalchemy import select

from portal.config import Settings
from portal.db.models import ImportJob, Role, Study
from portal.db.session import Database
from portal.services import jobs
from portal.services.auth import Principal
from portal.services.catalog import StudyQuery, get_study, list_studies, study_detail
from portal.services.importer import import_paths
from tests.integration.test_importer import _case, _files, _import_settings
from tests.support.dicom_data import testdata as _testdata

ADMIN = Principal(user_id=0, username="admin", role=Role.ADMIN)


def test_changed_file_is_a_new_version_not_an_overwrite(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    image = _case(folder)
    first = import_paths(db, _import_settings(settings), "p", [folder])
    (first_id,) = first.imported
    old_files = set(_files(settings))

    # A reviewer's corrected label map: one label grows.
    label_path = folder / "case-label.nii.gz"
    img = nib.load(label_path)
    labels = np.asanyarray(img.dataobj).copy()
    labels[labels == 1] = 2
    nib.save(nib.Nifti1Image(labels, img.affine), label_path)
    second = import_paths(db, _import_settings(settings), "p", [folder])
    (second_id,) = second.imported
    assert second.skipped == [] and second_id != first_id
    assert (str(image), f"version 2: replaces study {first_id}") in second.notes

    assert old_files <= set(_files(settings))  # nothing of version 1 was overwritten
    with db.session() as s:
        page = list_studies(s, ADMIN, StudyQuery())
        assert [row["id"] for row in page.items] == [second_id] and page.total == 1
        every = list_studies(s, ADMIN, StudyQuery(include_superseded=True))
        assert sorted(row["id"] for row in every.items) == [first_id, second_id]
        detail = study_detail(get_study(s, ADMIN, second_id))
        assert [(v["id"], v["version"], v["current"]) for v in detail["versions"]] == [
            (first_id, 1, False),
            (second_id, 2, True),
        ]
        old = s.get(Study, first_id)
        assert old is not None and old.superseded_at is not None
        assert [lab.voxel_count for lab in old.segmentations[0].labels][0] > 0

    # The same bytes again: nothing new; the first version's bytes again: also nothing.
    again = import_paths(db, _import_settings(settings), "p", [folder])
    assert again.imported == [] and again.skipped == ["case"]


def test_same_name_in_other_folders_is_not_a_version(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """`patient1/case.nii.gz` and `patient2/case.nii.gz` are two patients, never versions."""
    root = tmp_path / "in"
    _case(root / "patient1")
    _case(root / "patient2", shift=False)
    img = nib.load(root / "patient2" / "case.nii.gz")
    data = np.asanyarray(img.dataobj) + 1  # different bytes
    nib.save(nib.Nifti1Image(data, img.affine), root / "patient2" / "case.nii.gz")
    report = import_paths(db, _import_settings(settings), "p", [root])
    assert len(report.imported) == 2
    with db.session() as s:
        assert list_studies(s, ADMIN, StudyQuery()).total == 2
        lineages = set(s.scalars(select(Study.lineage)))
    assert lineages == {"nifti:patient1/case", "nifti:patient2/case"}


def test_non_image_dicom_objects_are_skipped_with_a_note(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("test-SR.dcm", "rtplan.dcm", "CT_small.dcm"):
        shutil.copy(_testdata(name), folder / name)
    report = import_paths(db, _import_settings(settings), "p", [folder])
    assert len(report.imported) == 1 and report.refused == []
    notes = dict(report.notes)
    assert "not an image" in notes[str(folder / "test-SR.dcm")]
    assert "not an image" in notes[str(folder / "rtplan.dcm")]


def test_ct_value_range_and_window_are_stored_in_hu(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = _testdata("CT_small.dcm")
    ds = pydicom.dcmread(path)
    hu = pydicom.pixels.apply_modality_lut(ds.pixel_array, ds)
    report = import_paths(db, _import_settings(settings), "p", [path])
    with db.session() as s:
        detail = study_detail(get_study(s, ADMIN, report.imported[0]))
    assert detail["value_range"] == [float(hu.min()), float(hu.max())]
    assert detail["window"] == {"level": 40.0, "width": 400.0}  # the CT soft-tissue default


def test_sidecar_label_table_names_the_labels(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    _case(folder)
    (folder / "case-label.txt").write_text(
        '1 200 30 30 1 1 1 "grey matter"\n2 240 240 240 1 1 1 "white matter"\n'
    )
    report = import_paths(db, _import_settings(settings), "p", [folder])
    with db.session() as s:
        detail = study_detail(get_study(s, ADMIN, report.imported[0]))
    labels = detail["segmentations"][0]["labels"]
    assert [(lab["name"], lab["color"]) for lab in labels] == [
        ("grey matter", "#c81e1e"),
        ("white matter", "#f0f0f0"),
    ]
    assert (str(folder / "case.nii.gz"), "label names from case-label.txt") in report.notes
    meta = json.loads(next(settings.preview_dir.rglob("meta.json")).read_text())
    assert [lab["name"] for lab in meta["labels"]] == ["grey matter", "white matter"]


def _coarse_label_case(folder: Path) -> tuple[Path, np.ndarray]:
    """An image plus a label map on a grid twice as coarse (a typical low-res export)."""
    image = _case(folder)
    (folder / "case-label.nii.gz").unlink()
    img = nib.load(image)
    coarse_affine = img.affine @ np.diag([2.0, 2.0, 2.0, 1.0])
    shape = tuple(-(-n // 2) for n in img.shape[:3])
    coarse = np.zeros(shape, np.uint8)
    coarse[4:10, 5:12, 3:8] = 3
    nib.save(nib.Nifti1Image(coarse, coarse_affine), folder / "case-label.nii.gz")
    return image, coarse


def test_label_on_another_grid_is_refused_unless_resampling_is_asked_for(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    image, coarse = _coarse_label_case(tmp_path / "in")
    import_settings = _import_settings(settings)
    refused = jobs.run_job(db, import_settings, jobs.create_job(db, "p", [tmp_path / "in"], None))
    assert refused.imported == []
    [(path, reason)] = refused.refused
    assert path.endswith("case-label.nii.gz")
    assert f"label shape {coarse.shape} vs image shape {nib.load(image).shape}" in reason
    job = jobs.run_job(
        db,
        import_settings,
        jobs.create_job(db, "p", [tmp_path / "in"], None, resample_labels=True),
    )
    assert len(job.imported) == 1, job.refused
    assert any("resampled to image grid" in note for _, note in job.notes)
    with db.session() as s:
        study = s.get(Study, job.imported[0])
        assert study is not None
        (label,) = study.segmentations[0].labels
        # Each coarse voxel covers 2x2x2 image voxels (clipped at the image's edge).
        assert label.value == 3 and label.voxel_count == np.count_nonzero(coarse) * 8
        stored = s.get(ImportJob, job.id)
        assert stored is not None and stored.options == {"resample_labels": True}


def test_colour_study_imports_with_a_colour_preview(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    report = import_paths(db, _import_settings(settings), "p", [_testdata("US1_UNCR.dcm")])
    assert len(report.imported) == 1, report.refused
    with db.session() as s:
        detail = study_detail(get_study(s, ADMIN, report.imported[0]))
    assert detail["dtype"] == "rgb24" and detail["value_range"] == [None, None]
    assert any("no patient position" in note for note in detail["notes"])
    meta = json.loads(next(settings.preview_dir.rglob("meta.json")).read_text())
    assert meta["rgb"] is True
