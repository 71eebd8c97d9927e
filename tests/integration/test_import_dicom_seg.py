"""A DICOM SEG in an import attaches to the series it references, voxel for voxel."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from nilearn import datasets

from portal.config import Settings
from portal.db.models import Study
from portal.db.session import Database
from portal.imaging.volume import Volume
from portal.services.discovery import discover
from portal.services.importer import import_paths
from tests.integration.test_importer import _import_settings
from tests.unit.imaging.test_dicom_seg import (  # the unit tests' real-data builders
    EXPECTED_TABLE,
    _crop_affine,
    _crop_masks,
    _later_wins,
    _make_seg,
    _write_and_read,
)


@pytest.fixture
def series_with_seg(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A DICOM series cropped from nilearn's MNI152 template, and a SEG of its tissues."""
    template = datasets.load_mni152_template(resolution=1)
    mni = Volume(np.asanyarray(template.dataobj).astype(np.int16), template.affine, "MR")
    tissue = {
        name: np.asanyarray(img.dataobj)
        for name, img in (
            ("gm", datasets.load_mni152_gm_mask(resolution=1)),
            ("wm", datasets.load_mni152_wm_mask(resolution=1)),
            ("gm_p", datasets.load_mni152_gm_template(resolution=1)),
            ("wm_p", datasets.load_mni152_wm_template(resolution=1)),
        )
    }
    data, masks, _ = _crop_masks(mni, tissue)
    folder = tmp_path / "in" / "series"
    _, _, datasets_ = _write_and_read(
        Volume(data, _crop_affine(mni.affine_ras), "MR", "crop"), folder
    )

    class Src:  # what _make_seg reads from its Source
        datasets = datasets_

    _make_seg(Src, tmp_path / "in" / "segmentation.dcm", masks)
    return tmp_path / "in", _later_wins(masks)


def test_seg_pairs_with_its_series_and_lands_on_its_voxels(
    db: Database, settings: Settings, series_with_seg
) -> None:  # type: ignore[no-untyped-def]
    folder, expected = series_with_seg
    found = discover([folder])
    assert found.refused == [] and len(found.sources) == 1
    (source,) = found.sources
    assert source.label_path == folder / "segmentation.dcm"
    report = import_paths(db, _import_settings(settings), "p", [folder])
    assert report.refused == [] and len(report.imported) == 1
    with db.session() as s:
        study = s.get(Study, report.imported[0])
        assert study is not None
        (seg,) = study.segmentations
        assert [(lab.value, lab.name) for lab in seg.labels] == [
            (lab.value, lab.name) for lab in EXPECTED_TABLE
        ]
        counts = {lab.value: lab.voxel_count for lab in seg.labels}
        assert any("more than one segment" in note for note in study.notes), study.notes
        uid = study.uid
    for value in (1, 2, 3):
        assert counts[value] == int(np.count_nonzero(expected == value))
    meta = json.loads((settings.preview_dir / uid / "meta.json").read_text())
    assert [lab["name"] for lab in meta["labels"]] == ["grey matter", "white matter", "bright"]


def test_seg_without_its_series_is_refused_by_name(
    db: Database, settings: Settings, series_with_seg, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder, _ = series_with_seg
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(folder / "segmentation.dcm", alone / "segmentation.dcm")
    report = import_paths(db, _import_settings(settings), "p", [alone])
    [(path, reason)] = report.refused
    assert path == str(alone / "segmentation.dcm") and "not in this import" in reason
    assert report.imported == []


def test_seg_without_series_reference_pairs_by_its_source_images(
    db: Database, settings: Settings, series_with_seg
) -> None:  # type: ignore[no-untyped-def]
    folder, expected = series_with_seg
    seg_path = folder / "segmentation.dcm"
    ds = pydicom.dcmread(seg_path)
    del ds.ReferencedSeriesSequence  # optional in some exporters
    ds.save_as(seg_path)
    (source,) = discover([folder]).sources
    assert source.label_path == seg_path
    report = import_paths(db, _import_settings(settings), "p", [folder])
    assert report.refused == [] and len(report.imported) == 1
    with db.session() as s:
        study = s.get(Study, report.imported[0])
        assert study is not None
        counts = {lab.value: lab.voxel_count for lab in study.segmentations[0].labels}
    assert counts[2] == int(np.count_nonzero(expected == 2))
