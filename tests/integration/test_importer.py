"""Import through the real readers into a migrated catalog: pairing, idempotence, refusals."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.config import Settings
from portal.db.models import Segmentation, Study
from portal.db.session import Database
from portal.services.discovery import discover
from portal.services.importer import ImportSettings, import_paths

ANATOMICAL = Path(nib.__file__).parent / "tests" / "data" / "anatomical.nii"


def _import_settings(settings: Settings) -> ImportSettings:
    return ImportSettings(
        settings.store_dir, settings.preview_dir, settings.preview_max_dim, settings.max_voxels
    )


def _case(folder: Path, label_suffix: str = "-label", shift: bool = False) -> Path:
    """A real anatomical image plus a label map thresholded from it (same grid)."""
    folder.mkdir(parents=True, exist_ok=True)
    img = nib.load(ANATOMICAL)
    data = np.asanyarray(img.dataobj)
    image = folder / "case.nii.gz"
    nib.save(nib.Nifti1Image(data, img.affine), image)
    labels = np.zeros(data.shape, np.uint8)
    labels[data > np.percentile(data, 80)] = 1
    labels[data > np.percentile(data, 95)] = 2
    affine = img.affine.copy()
    if shift:
        affine[0, 3] += 5.0
    nib.save(nib.Nifti1Image(labels, affine), folder / f"case{label_suffix}.nii.gz")
    return image


def _counts(db: Database) -> tuple[int, int]:
    with db.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Study)) or 0,
            s.scalar(select(func.count()).select_from(Segmentation)) or 0,
        )


def _files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.data_dir.rglob("*") if p.is_file() and p.name != "secret_key")


@pytest.mark.parametrize("suffix", ["-label", "_seg", "_label", "-seg"])
def test_sibling_label_maps_are_paired(tmp_path: Path, suffix: str) -> None:
    _case(tmp_path, suffix)
    found = discover([tmp_path])
    sources, refused = found.sources, found.refused
    assert refused == []
    assert len(sources) == 1 and sources[0].label_path is not None
    assert sources[0].label_path.name == f"case{suffix}.nii.gz"


def test_label_sibling_is_found_when_only_the_image_is_named(tmp_path: Path) -> None:
    image = _case(tmp_path, "_seg")
    found = discover([image])
    sources, refused = found.sources, found.refused
    assert refused == [] and len(sources) == 1
    assert sources[0].label_path == tmp_path / "case_seg.nii.gz"


def test_import_is_idempotent_and_keeps_geometry(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    image = _case(tmp_path / "in")
    report = import_paths(db, _import_settings(settings), "p1", [tmp_path / "in"])
    assert report.refused == [] and len(report.imported) == 1
    again = import_paths(db, _import_settings(settings), "p1", [tmp_path / "in"])
    assert again.imported == [] and again.skipped == ["case"]
    assert _counts(db) == (1, 1)
    ref = nib.load(image)
    with db.session() as s:
        study = s.get(Study, report.imported[0])
        assert study is not None
        assert study.shape == ref.shape[:3]
        assert np.allclose(study.affine_ras, ref.affine, atol=1e-4)
        assert study.orientation == "".join(nib.aff2axcodes(ref.affine))
        assert [lab.value for lab in study.segmentations[0].labels] == [1, 2]


def test_mismatched_label_grid_is_refused_with_numbers(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    _case(tmp_path / "in", shift=True)
    report = import_paths(db, _import_settings(settings), "p1", [tmp_path / "in"])
    assert report.imported == []
    [(path, reason)] = report.refused
    assert path.endswith("case-label.nii.gz")
    assert "5" in reason  # the affine difference in mm is in the message
    assert _counts(db) == (0, 0)
    assert _files(settings) == []


def test_corrupt_and_unknown_files_are_refused_by_name(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    good = gzip.compress(ANATOMICAL.read_bytes())
    (folder / "broken.nii.gz").write_bytes(good[: len(good) // 3])
    (folder / "notes.txt").write_text("not an image")
    report = import_paths(db, _import_settings(settings), "p1", [folder])
    reasons = dict(report.refused)
    assert set(reasons) == {str(folder / "broken.nii.gz"), str(folder / "notes.txt")}
    assert _counts(db) == (0, 0)
    assert _files(settings) == []


def test_failed_commit_leaves_no_rows_and_no_files(
    db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _case(tmp_path / "in")

    def fail(self: Session) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Session, "commit", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        import_paths(db, _import_settings(settings), "p1", [tmp_path / "in"])
    monkeypatch.undo()
    assert _counts(db) == (0, 0)
    assert [p for p in _files(settings) if "store" in p.parts or "previews" in p.parts] == []
