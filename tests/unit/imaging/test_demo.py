import hashlib
from pathlib import Path

import numpy as np

from portal.imaging.demo import BRAIN_LABELS, CT_LABELS, StudyKind, build_demo_dataset
from portal.imaging.dicom import find_dicom_series, read_dicom_series
from portal.imaging.nifti import read_label_nifti, read_nifti
from portal.imaging.preview import build_preview
from portal.imaging.volume import check_same_grid


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_studies_as_promised(demo_studies, demo_dir):
    assert [s.name for s in demo_studies] == [
        "MNI152 T1 1mm",
        "MNI152 T1 1mm (DICOM)",
        "MNI152 T1 2mm",
        "MNI152 T1 1mm (LAS on disk)",
        "CT small (pydicom)",
        "CT 512 (pydicom-data)",
        "MR small (pydicom)",
    ]
    assert [s.kind for s in demo_studies] == ["nifti", "dicom", "nifti", "nifti"] + ["dicom"] * 3
    assert demo_studies[0].label_names == BRAIN_LABELS
    assert demo_studies[4].label_names == CT_LABELS and demo_studies[4].modality == "CT"
    assert demo_studies[-1].label_path is None
    assert demo_studies[0].label_path.name == "mni152_1mm-label.nii.gz"
    assert demo_studies[1].label_path == demo_studies[0].label_path
    size = sum(p.stat().st_size for p in demo_dir.rglob("*") if p.is_file())
    assert size < 60 * 1024**2


def test_every_study_reads_back(demo_studies):
    for study in demo_studies:
        if study.kind == StudyKind.NIFTI:
            (path,) = study.image_paths
            volume = read_nifti(path, modality=study.modality)
        else:
            (series,) = find_dicom_series(study.image_paths)
            assert len(series.paths) == len(study.image_paths)
            volume = read_dicom_series(series)
        assert volume.modality == study.modality
        labels = None
        if study.label_path is not None:
            labels, affine = read_label_nifti(study.label_path)
            check_same_grid(
                volume.affine_ras, volume.shape, affine, labels.shape, path=study.label_path
            )
            assert set(np.unique(labels).tolist()) <= {0, *study.label_names}
            assert np.count_nonzero(labels) > 0
        preview = build_preview(volume, labels)
        assert preview.image_u8.max() > 0


def test_ct_labels_follow_hounsfield_thresholds(studies_by_name):
    study = studies_by_name["CT 512 (pydicom-data)"]
    (series,) = find_dicom_series(study.image_paths)
    hu = read_dicom_series(series).data
    labels, _ = read_label_nifti(study.label_path)
    assert hu.shape == (512, 512, 1)
    np.testing.assert_array_equal(labels == 1, hu >= 300)
    np.testing.assert_array_equal(labels == 2, (hu >= -100) & (hu < 300))


def test_rebuild_writes_identical_bytes(demo_studies, demo_dir):
    before = _hashes(demo_dir)
    again = build_demo_dataset(demo_dir)
    assert _hashes(demo_dir) == before
    assert again == demo_studies
