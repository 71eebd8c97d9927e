"""Build the demo dataset from real images shipped by installed packages.

Sources (nothing is downloaded): nilearn's MNI152 2009 template with its grey
and white matter probability maps, pydicom's ``CT_small.dcm`` and
``MR_small.dcm``, and pydicom-data's ``693_UNCI.dcm``. nilearn and
pydicom-data are the ``demo`` extra, imported only when a demo is built.

The build is reproducible: UIDs are derived from fixed seeds, dates are
fixed, and gzip output carries no timestamp, so a rerun writes identical bytes.
"""

from __future__ import annotations

import datetime
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

from portal.imaging.dicom import find_dicom_series, read_dicom_series, write_dicom_series
from portal.imaging.nifti import write_nifti
from portal.imaging.volume import Volume

__all__ = ["BRAIN_LABELS", "CT_LABELS", "DemoStudy", "StudyKind", "build_demo_dataset"]

logger = logging.getLogger(__name__)

#: Label names of the MNI152 tissue maps.
BRAIN_LABELS = {1: "grey matter", 2: "white matter"}
#: Label names of the CT threshold maps.
CT_LABELS = {1: "bone", 2: "soft tissue"}

# Hounsfield thresholds of the CT demo labels.
_BONE_MIN_HU = 300
_SOFT_TISSUE_MIN_HU = -100

_DEMO_DATETIME = datetime.datetime(2000, 1, 1, 12, 0, 0)
_UID_SEED = "portal-demo"


class StudyKind(StrEnum):
    """How a study's image is stored."""

    NIFTI = "nifti"
    DICOM = "dicom"


@dataclass(frozen=True)
class DemoStudy:
    """One demo study as written to disk.

    Parameters
    ----------
    name : str
        Display name, unique within the demo.
    image_paths : list of pathlib.Path
        One NIfTI file, or all files of one DICOM series.
    label_path : pathlib.Path or None
        Label NIfTI on the image grid, if any.
    label_names : dict of int to str
        Names of the label values.
    modality : str
        DICOM modality code.
    kind : StudyKind
        ``"nifti"`` or ``"dicom"``.
    """

    name: str
    image_paths: list[Path]
    label_path: Path | None
    label_names: dict[int, str] = field(default_factory=dict)
    modality: str = "MR"
    kind: StudyKind = StudyKind.NIFTI


def _tissue_labels(gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """1 = grey matter, 2 = white matter, from probability maps (0..1)."""
    labels = np.zeros(gm.shape, dtype=np.uint8)
    labels[(gm > 0.5) & (gm >= wm)] = 1
    labels[(wm > 0.5) & (wm > gm)] = 2
    return labels


def _ct_labels(hu: np.ndarray) -> np.ndarray:
    labels = np.zeros(hu.shape, dtype=np.uint8)
    labels[(hu >= _SOFT_TISSUE_MIN_HU) & (hu < _BONE_MIN_HU)] = 2
    labels[hu >= _BONE_MIN_HU] = 1
    return labels


def _mni(resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(int16 T1 image 0..255, uint8 tissue labels, affine) at 1 or 2 mm."""
    from nilearn import datasets

    template = datasets.load_mni152_template(resolution=resolution)
    gm = datasets.load_mni152_gm_template(resolution=resolution).get_fdata(dtype=np.float32)
    wm = datasets.load_mni152_wm_template(resolution=resolution).get_fdata(dtype=np.float32)
    # nilearn rescales the 8-bit template to 0..1; storing 0..255 integers
    # keeps the demo's MR values integral, as a scanner's would be.
    image = np.rint(template.get_fdata(dtype=np.float32) * 255).astype(np.int16)
    return image, _tissue_labels(gm, wm), np.asarray(template.affine, dtype=np.float64)


def _flip_i(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Same image with voxel axis i reversed (RAS on disk becomes LAS)."""
    flip = np.eye(4)
    flip[0, 0] = -1.0
    flip[0, 3] = data.shape[0] - 1
    return np.ascontiguousarray(data[::-1]), affine @ flip


def _replace_dicom_folder(folder: Path) -> None:
    """Remove .dcm files of a previous build so stale slices cannot linger."""
    if folder.is_dir():
        for old in folder.glob("*.dcm"):
            old.unlink()


def _pydicom_file(name: str) -> Path | None:
    from pydicom.data import get_testdata_file

    found = get_testdata_file(name, download=False)
    return Path(str(found)) if found else None


def _copied_ct(folder: Path, source_name: str, stem: str, study_name: str) -> DemoStudy | None:
    source = _pydicom_file(source_name)
    if source is None:
        logger.warning("demo study %r skipped: %s is not installed", study_name, source_name)
        return None
    series_folder = folder / stem
    _replace_dicom_folder(series_folder)
    series_folder.mkdir(parents=True, exist_ok=True)
    target = series_folder / source_name
    shutil.copyfile(source, target)
    (series,) = find_dicom_series([series_folder])
    volume = read_dicom_series(series)
    label_path = write_nifti(
        folder / f"{stem}-label.nii.gz", _ct_labels(volume.data), volume.affine_ras
    )
    return DemoStudy(study_name, [target], label_path, dict(CT_LABELS), "CT", StudyKind.DICOM)


def _mni_studies(folder: Path) -> list[DemoStudy]:
    image, labels, affine = _mni(1)
    image_path = write_nifti(folder / "mni152_1mm.nii.gz", image, affine)
    label_path = write_nifti(folder / "mni152_1mm-label.nii.gz", labels, affine)
    studies = [
        DemoStudy("MNI152 T1 1mm", [image_path], label_path, dict(BRAIN_LABELS)),
    ]

    dicom_folder = folder / "mni152_1mm_dicom"
    _replace_dicom_folder(dicom_folder)
    dicom_paths = write_dicom_series(
        Volume(image, affine, "MR", "MNI152 T1 1mm"),
        dicom_folder,
        patient_name="Demo^MNI152",
        patient_id="DEMO-MNI152",
        study_description="MNI152 demo",
        series_description="MNI152 T1 1mm",
        modality="MR",
        uid_seed=f"{_UID_SEED}/mni152_1mm",
        study_datetime=_DEMO_DATETIME,
    )
    studies.append(
        DemoStudy(
            "MNI152 T1 1mm (DICOM)",
            sorted(dicom_paths),
            label_path,
            dict(BRAIN_LABELS),
            "MR",
            StudyKind.DICOM,
        )
    )

    image2, labels2, affine2 = _mni(2)
    studies.append(
        DemoStudy(
            "MNI152 T1 2mm",
            [write_nifti(folder / "mni152_2mm.nii.gz", image2, affine2)],
            write_nifti(folder / "mni152_2mm-label.nii.gz", labels2, affine2),
            dict(BRAIN_LABELS),
        )
    )

    las_image, las_affine = _flip_i(image, affine)
    las_labels, _ = _flip_i(labels, affine)
    studies.append(
        DemoStudy(
            "MNI152 T1 1mm (LAS on disk)",
            [write_nifti(folder / "mni152_1mm_las.nii.gz", las_image, las_affine)],
            write_nifti(folder / "mni152_1mm_las-label.nii.gz", las_labels, las_affine),
            dict(BRAIN_LABELS),
        )
    )
    return studies


def _mr_small(folder: Path) -> DemoStudy | None:
    source = _pydicom_file("MR_small.dcm")
    if source is None:
        logger.warning("demo study 'MR small (pydicom)' skipped: MR_small.dcm not found")
        return None
    series_folder = folder / "mr_small"
    _replace_dicom_folder(series_folder)
    series_folder.mkdir(parents=True, exist_ok=True)
    target = series_folder / "MR_small.dcm"
    shutil.copyfile(source, target)
    return DemoStudy("MR small (pydicom)", [target], None, {}, "MR", StudyKind.DICOM)


def build_demo_dataset(folder: Path) -> list[DemoStudy]:
    """Write the demo studies into ``folder`` and describe them.

    Parameters
    ----------
    folder : pathlib.Path
        Created if needed. Rerunning overwrites the same files with the same
        bytes (about 40 MB in all).

    Returns
    -------
    list of DemoStudy
        In a fixed order: MNI152 1 mm NIfTI, the same as DICOM, MNI152 2 mm,
        MNI152 1 mm stored LAS, CT small, CT 512, MR small (no labels).
        A study whose source file is not installed is left out with a warning.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    studies = _mni_studies(folder)
    builders: list[Callable[[], DemoStudy | None]] = [
        lambda: _copied_ct(folder, "CT_small.dcm", "ct_small", "CT small (pydicom)"),
        lambda: _copied_ct(folder, "693_UNCI.dcm", "ct_512", "CT 512 (pydicom-data)"),
        lambda: _mr_small(folder),
    ]
    for build in builders:
        study = build()
        if study is not None:
            studies.append(study)
    logger.info("demo dataset: %d studies in %s", len(studies), folder)
    return studies
