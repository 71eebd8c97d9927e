"""Geometry and voxel values of every real test image, checked against independent readers.

Portal's readers are compared with SimpleITK (GDCM) and dcm2niix for DICOM, pydicom's
``apply_modality_lut`` for the values of every monochrome DICOM frame, and nibabel for
NIfTI and MGZ (this SimpleITK build has no MGH reader). Shapes must be equal, affines
within 1e-4 mm and integer voxel values bit-exact. Label maps are imported into a real
catalog and must label the same world positions in the stored preview.

The DICOM corpus (see :mod:`tests.support.reference`) is every image series in pydicom's
test files, pydicom-data and deid-data, plus series written with pydicom from a crop of
nilearn's real MNI152 T1: axial, oblique, left-handed, shuffled file names, one slice,
two slices, CT-like rescaled int16, sagittal and coronal.

Series left out of the corpus, and why (``test_excluded_series_are_known_and_refused_by_portal``
keeps this list honest, and checks that portal refuses each damaged one):

* ``NOT_READABLE_BY_SITK``: damaged on purpose, SimpleITK cannot read them;
* ``NOT_ONE_VOLUME``: dicomdirtests ``CT2``, ``CT2N``, two ``MR2`` series and ``MR700``
  mix orientations or gaps; SimpleITK stacks them anyway into one wrong grid;
* ``UNDECODABLE_BY_PYDICOM``: ``JPEG-lossy.dcm``, a 12-bit JPEG Extended stream no
  pydicom decoder reads;
* ``TOO_SLOW_FOR_SITK``: ``SC_rgb_jpeg.dcm`` takes GDCM 6-8 s (runtime budget).

Comparisons left out or loosened, each for a reason (``_compare_sitk``,
``_sitk_values_differ``, ``_dcm2niix_applies``, ``_check_dcm2niix``):

* one slice: the length of the ``k`` column is a convention (portal: SliceThickness;
  SimpleITK: SpacingBetweenSlices or 1 mm; dcm2niix: not even along the normal of an
  oblique slice); the ``i`` and ``j`` columns and the origin, which place every voxel,
  are compared;
* a multi-frame file without geometry: SimpleITK ignores SpacingBetweenSlices and steps
  1 mm; only the direction of ``k`` is compared;
* ``eCT_Supplemental.dcm``: its slice normal points against the stored frame order;
  GDCM keeps that order with a left-handed direction matrix, portal sorts along the
  normal; compared in world space, where they agree;
* lossy JPEG (baseline, extended): values depend on the decoder (IJG in GDCM and
  dcm2niix, Pillow or pylibjpeg in pydicom) and GDCM returns YBR_FULL_422 JPEG as YCbCr;
  geometry is compared, pydicom's modality LUT checks the values;
* Modality LUT Sequence (``mlut_18.dcm``): GDCM ignores it; pydicom is the reference;
* MONOCHROME1: GDCM inverts with ``2**BitsStored - 1 - value``, portal with
  ``max + min - value`` (the same picture); compared up to that constant;
* colour deeper than 8 bits: portal scales to uint8 as documented
  (``rint(value * 255 / (2**BitsStored - 1))``), applied to SimpleITK's samples; but
  GDCM mis-orders the RLE byte segments of 16- and 32-bit RGB (``SC_rgb_rle_16bit.dcm``
  reads differently from the same image uncompressed, which matches portal), so RLE
  deep colour values are not compared;
* PALETTE COLOR: both apply the palette; compared as 8-bit RGB
  (``test_palette_colour_matches_simpleitk``);
* rescaled (float32) values: within two float32 steps of the largest value, as
  portal narrows to float32 before it inverts MONOCHROME1 (one more rounding);
* dcm2niix: only series with patient geometry (without, it invents an origin at the
  image centre with flipped rows); its scl_slope is float32, so the stored values are
  compared bit-exact and the slope to float32; ``J2K_pixelrep_mismatch.dcm`` values
  are skipped (dcm2niix keeps the codestream's unsigned samples though
  PixelRepresentation is 1; pydicom and GDCM follow the dataset, as DICOM says).
"""

from __future__ import annotations

import gzip
import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk  # a missing SimpleITK must fail the module, not skip it
from pydicom.uid import JPEGBaseline8Bit, JPEGExtended12Bit, RLELossless
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkIOXML import vtkXMLImageDataReader

from portal.db import migrate
from portal.db.models import Study
from portal.db.session import Database
from portal.imaging.dicom import find_dicom_series, read_dicom_series
from portal.imaging.errors import ImagingError
from portal.imaging.mgh import read_mgh
from portal.imaging.nifti import read_nifti
from portal.imaging.volume import Volume
from portal.services.discovery import discover
from portal.services.importer import ImportSettings, import_study
from tests.support.reference import (
    DicomCase,
    generated_dicom_cases,
    has_patient_geometry,
    mni_crop,
    modality_lut_volume,
    nibabel_reference_files,
    read_dcm2niix,
    read_sitk_series,
    real_dicom_cases,
    run_dcm2niix,
    world_match,
)

# Series SimpleITK stacks although they are not one volume (ITK warns "Non uniform
# sampling or missing slices" and builds one wrong grid). Portal refuses them.
NOT_ONE_VOLUME = {
    "pydicom/dicomdirtests/77654033/CT2": "irregular slice gaps",
    "pydicom/dicomdirtests/98892001/CT2N": "ImageOrientationPatient differs between files",
    "pydicom/dicomdirtests/98892003/MR2/4950": "ImageOrientationPatient differs between files",
    "pydicom/dicomdirtests/98892003/MR2/6273": "ImageOrientationPatient differs between files",
    "pydicom/dicomdirtests/98892003/MR700": "ImageOrientationPatient differs between files",
}
# Damaged on purpose; SimpleITK cannot read them (and portal refuses them).
NOT_READABLE_BY_SITK = {
    "pydicom/JPEG2000-embedded-sequence-delimiter.dcm",
    "pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm",
    "pydicom/MR_truncated.dcm",
}
# GDCM needs 6-8 s for this 256 x 256 lossy JPEG; its decompressed twin
# SC_rgb_jpeg_dcmd.dcm and the other SC_rgb_jpeg_* encodings are compared instead.
TOO_SLOW_FOR_SITK = {"pydicom/SC_rgb_jpeg.dcm"}
# SimpleITK decodes it; pydicom has no decoder for this 12-bit JPEG Extended stream.
UNDECODABLE_BY_PYDICOM = {"pydicom/JPEG-lossy.dcm"}
LOSSY_JPEG = {JPEGBaseline8Bit, JPEGExtended12Bit}
DCM2NIIX_VALUES_DIFFER = {"pydicom/J2K_pixelrep_mismatch.dcm"}
MIN_COMPARED = {"sitk": 100, "palette": 5, "dcm2niix": 20, "lut": 50}

Problem = str | None


def _portal(case: DicomCase) -> Volume:
    (series,) = find_dicom_series([case.folder])
    return read_dicom_series(series)


def _problem(case: DicomCase, check: Callable[..., None], *args: object) -> Problem:
    """``check(case, *args)``'s failure as one line of a report, or None."""
    try:
        check(case, *args)
    except (AssertionError, ImagingError, RuntimeError, ValueError) as exc:
        return f"{case.name}: {type(exc).__name__}: {exc}"
    return None


def _photometric(case: DicomCase) -> str:
    return str(case.header.get("PhotometricInterpretation", ""))


def _lossy(case: DicomCase) -> bool:
    return case.header.file_meta.TransferSyntaxUID in LOSSY_JPEG


def _assert_float32_equal(ours: np.ndarray, expected: np.ndarray) -> None:
    """Rescaled (float32) voxels: within two float32 steps of the largest value.

    Everything is the float64 result rounded to float32 once, except MONOCHROME1, which
    portal narrows to float32 before it inverts (rounded twice).
    """
    assert ours.dtype == np.float32
    step = float(np.spacing(np.float32(np.abs(expected).max())))
    np.testing.assert_allclose(ours, expected.astype(np.float64), rtol=0, atol=2 * step)


# --- SimpleITK --------------------------------------------------------------------


def _compare_sitk(case: DicomCase, ours: Volume, theirs: np.ndarray, affine: np.ndarray) -> None:
    """Shape, affine and values against SimpleITK, in the same voxel order.

    One exception to the order: for a multi-frame file whose slice normal (row x column)
    points against its stored frame order, GDCM keeps the stored order with a
    left-handed direction matrix (``eCT_Supplemental.dcm``); portal sorts the frames
    along the normal. Both put every voxel at the same world position.
    """
    assert ours.shape == theirs.shape[:3], f"shape {ours.shape} vs {theirs.shape[:3]}"
    if ours.shape[2] > 1 and not has_patient_geometry(case.header):
        # SimpleITK steps 1 mm whatever SpacingBetweenSlices says: compare the direction.
        length = np.linalg.norm(ours.affine_ras[:3, 2])
        step = affine[:3, 2] / np.linalg.norm(affine[:3, 2])
        np.testing.assert_allclose(ours.affine_ras[:3, 2] / length, step, atol=1e-6)
        affine = affine.copy()
        affine[:3, 2] = step * length
    match = world_match(ours.affine_ras, ours.shape, affine, theirs.shape)
    if not np.array_equal(match.index_map, np.eye(4)):
        flip_k = np.diag([1, 1, -1, 1])
        flip_k[2, 3] = ours.shape[2] - 1
        assert np.linalg.det(affine[:3, :3]) < 0, f"voxel order differs:\n{match.index_map}"
        assert np.array_equal(match.index_map, flip_k), f"voxel order:\n{match.index_map}"
    if _sitk_values_differ(case):
        return
    values = match.take(ours.data, theirs.shape)
    assert theirs.shape == values.shape, (theirs.shape, values.shape)
    if ours.is_rgb:
        if theirs.dtype != np.uint8:  # portal's documented reduction to 8 bits
            top = float(2 ** int(case.header.BitsStored) - 1)
            theirs = np.rint(np.clip(theirs, 0, top) * (255.0 / top)).astype(np.uint8)
        np.testing.assert_array_equal(values, theirs)
    elif _photometric(case) == "MONOCHROME1":
        # GDCM inverts with 2**BitsStored - 1 - value, portal with max + min - value.
        offset = values.astype(np.float64) - theirs.astype(np.float64)
        spread = float(np.ptp(offset))
        rounding = 0.0  # float32 voxels: two roundings of the largest value at most
        if values.dtype.kind == "f":
            rounding = 2 * float(np.spacing(np.float32(np.abs(values).max())))
        assert spread <= rounding, f"offset to SimpleITK varies by {spread}"
    elif values.dtype.kind == "f":
        _assert_float32_equal(values, theirs)
    else:
        np.testing.assert_array_equal(values.astype(np.float64), theirs.astype(np.float64))


def _sitk_values_differ(case: DicomCase) -> bool:
    """Values SimpleITK gets wrong or differently by design (see the module docstring)."""
    ds = case.header
    if _lossy(case) or "ModalityLUTSequence" in ds:
        return True
    deep_colour = int(ds.get("SamplesPerPixel", 1)) == 3 and int(ds.BitsAllocated) > 8
    return deep_colour and ds.file_meta.TransferSyntaxUID == RLELossless


def _check_sitk(case: DicomCase, ours: Volume) -> None:
    theirs, affine = read_sitk_series(case.folder)
    _compare_sitk(case, ours, theirs, affine)


# --- dcm2niix ---------------------------------------------------------------------


def _dcm2niix_applies(case: DicomCase) -> bool:
    # Without patient geometry dcm2niix invents its own (origin at the image centre).
    return has_patient_geometry(case.header) and _photometric(case) != "PALETTE COLOR"


def _check_dcm2niix(case: DicomCase, ours: Volume, out_dir: Path) -> None:
    theirs = read_dcm2niix(run_dcm2niix(case.folder, out_dir))
    match = world_match(ours.affine_ras, ours.shape, theirs.affine_ras, theirs.stored.shape)
    if _lossy(case) or case.name in DCM2NIIX_VALUES_DIFFER:
        return
    values = match.take(ours.data, theirs.stored.shape)
    if ours.data.dtype.kind == "f":
        # dcm2niix keeps the stored values and a float32 scl_slope: scale with the
        # header's own RescaleSlope, and check the NIfTI's to float32 precision.
        ds = case.header
        slope, inter = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        assert np.float32(theirs.slope) == np.float32(slope), (theirs.slope, slope)
        assert np.float32(theirs.inter) == np.float32(inter), (theirs.inter, inter)
        expected = (theirs.stored.astype(np.float64) * slope + inter).astype(np.float32)
    else:
        expected = theirs.stored.astype(np.float64) * theirs.slope + theirs.inter
    np.testing.assert_array_equal(values.astype(np.float64), expected.astype(np.float64))


# --- pydicom's modality LUT -------------------------------------------------------


def _lut_applies(case: DicomCase) -> bool:
    monochrome = int(case.header.get("SamplesPerPixel", 1)) == 1
    return monochrome and _photometric(case) != "PALETTE COLOR"


def _check_lut(case: DicomCase, ours: Volume) -> None:
    expected = modality_lut_volume(list(case.paths), ours.affine_ras, ours.shape)
    assert expected.shape == ours.data.shape, (expected.shape, ours.data.shape)
    if ours.data.dtype.kind == "f":
        _assert_float32_equal(ours.data, expected)
    else:
        np.testing.assert_array_equal(ours.data.astype(np.float64), expected.astype(np.float64))


# --- one pass over the real corpus -------------------------------------------------


@dataclass
class Survey:
    """What comparing every real series found: exclusions and problems per reference."""

    excluded: dict[str, str] = field(default_factory=dict)
    modality: dict[str, str] = field(default_factory=dict)
    refused_by_portal: dict[str, bool] = field(default_factory=dict)
    compared: dict[str, list[str]] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)

    def record(self, reader: str, name: str, problem: Problem) -> None:
        self.compared.setdefault(reader, []).append(name)
        if problem is not None:
            self.problems.setdefault(reader, []).append(problem)

    def assert_clean(self, reader: str) -> None:
        compared = self.compared.get(reader, [])
        assert len(compared) >= MIN_COMPARED[reader], compared
        problems = self.problems.get(reader, [])
        assert not problems, f"{len(problems)} of {len(compared)} differ:\n" + "\n".join(problems)


def _refused(case: DicomCase) -> bool:
    found = find_dicom_series([case.folder])
    if not found:
        return True  # portal does not even take it for an image
    try:
        read_dicom_series(found[0])
    except ImagingError:
        return True
    return False


def _survey_case(result: Survey, case: DicomCase, out_dir: Path) -> None:
    if case.name in NOT_ONE_VOLUME or case.name in UNDECODABLE_BY_PYDICOM:
        result.excluded[case.name] = NOT_ONE_VOLUME.get(case.name, "pydicom cannot decode it")
        result.refused_by_portal[case.name] = _refused(case)
        return
    if case.name in TOO_SLOW_FOR_SITK:
        result.excluded[case.name] = "GDCM takes seconds to decode it"
        return
    try:
        theirs, affine = read_sitk_series(case.folder)
    except RuntimeError as exc:
        result.excluded[case.name] = f"SimpleITK cannot read it: {exc}"
        result.refused_by_portal[case.name] = _refused(case)
        return
    result.modality[case.name] = str(case.header.get("Modality", ""))
    try:
        ours = _portal(case)
    except ImagingError as exc:
        failure = f"{case.name}: portal refuses it: {exc}"
        for reader in ("sitk", "dcm2niix", "lut"):
            result.record(reader, case.name, failure)
        return
    reader = "palette" if _photometric(case) == "PALETTE COLOR" else "sitk"
    result.record(reader, case.name, _problem(case, _compare_sitk, ours, theirs, affine))
    if _dcm2niix_applies(case):
        result.record("dcm2niix", case.name, _problem(case, _check_dcm2niix, ours, out_dir))
    if _lut_applies(case):
        result.record("lut", case.name, _problem(case, _check_lut, ours))


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> Survey:
    """Read every real series once with each reader (one series in memory at a time).

    The corpus keeps the series SimpleITK's ImageSeriesReader reads as one volume;
    the others are listed in ``excluded`` with the reason.
    """
    result = Survey()
    out = tmp_path_factory.mktemp("dcm2niix-real")
    with warnings.catch_warnings():
        # Some real test files are not conformant (implicit VR in an explicit file, an
        # invalid UID) and pydicom says so with a UserWarning; that is not under test.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom\.")
        for n, case in enumerate(real_dicom_cases(tmp_path_factory.mktemp("real-dicom"))):
            _survey_case(result, case, out / f"{n:03d}")
    return result


def test_reference_tools_are_installed() -> None:
    # CI installs both; their absence must fail the build, not skip the comparisons.
    assert shutil.which("dcm2niix") is not None, "dcm2niix is not on PATH"
    assert sitk.Version.MajorVersion() >= 2


def test_excluded_series_are_known_and_refused_by_portal(survey: Survey) -> None:
    known = {*NOT_ONE_VOLUME, *NOT_READABLE_BY_SITK, *TOO_SLOW_FOR_SITK, *UNDECODABLE_BY_PYDICOM}
    assert set(survey.excluded) == known, survey.excluded
    assert survey.refused_by_portal == dict.fromkeys(known - TOO_SLOW_FOR_SITK, True)


def test_real_series_match_simpleitk(survey: Survey) -> None:
    for expected in [
        "pydicom/CT_small.dcm",
        "pydicom/MR_small.dcm",
        "pydicom-data/emri_small.dcm",
        "pydicom/dicomdirtests/98892001/CT5N",
        "pydicom-data/693_UNCI.dcm",
        "deid-data/humans/ctbrain1.dcm",
    ]:
        assert expected in survey.compared["sitk"]
    survey.assert_clean("sitk")


def test_palette_colour_matches_simpleitk(survey: Survey) -> None:
    survey.assert_clean("palette")


def test_real_series_match_dcm2niix(survey: Survey) -> None:
    survey.assert_clean("dcm2niix")


def test_real_monochrome_values_match_pydicom_modality_lut(survey: Survey) -> None:
    ct = [n for n in survey.compared["lut"] if survey.modality[n] == "CT"]
    assert len(ct) >= 8, ct
    survey.assert_clean("lut")


# --- series written from the MNI152 template ---------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[DicomCase, Volume]]:
    return generated_dicom_cases(tmp_path_factory.mktemp("generated-dicom"), mni_crop())


GENERATED_KINDS = [
    "axial",
    "oblique",
    "left-handed",
    "shuffled",
    "single-slice",
    "two-slice",
    "ct-rescaled",
    "sagittal",
    "coronal",
]


def test_every_generated_kind_is_tested(generated) -> None:
    assert sorted(generated) == sorted(GENERATED_KINDS)


@pytest.mark.parametrize("kind", GENERATED_KINDS)
def test_generated_series_match_references(generated, kind: str, tmp_path: Path) -> None:
    case, source = generated[kind]
    ours = _portal(case)
    # What was written: the same voxels at the same world positions.
    match = world_match(ours.affine_ras, ours.shape, source.affine_ras, source.shape)
    np.testing.assert_array_equal(match.take(ours.data, source.shape), source.data)
    assert ours.data.dtype == np.int16
    _check_sitk(case, ours)
    _check_dcm2niix(case, ours, tmp_path)
    _check_lut(case, ours)
    if kind == "shuffled":
        names = [p.name for p in case.paths]
        assert names != sorted(names)
        numbers = [int(pydicom.dcmread(p).InstanceNumber) for p in sorted(case.paths)]
        assert numbers != sorted(numbers)
    elif kind == "left-handed":
        assert np.linalg.det(source.affine_ras[:3, :3]) < 0
        assert np.linalg.det(ours.affine_ras[:3, :3]) > 0  # DICOM slices sort by position
    elif kind == "oblique":
        directions = ours.affine_ras[:3, :3] / np.linalg.norm(ours.affine_ras[:3, :3], axis=0)
        off_axis = np.degrees(np.arccos(np.abs(directions).max(axis=0)))
        assert np.all(off_axis > 19.0), off_axis
    elif kind in ("sagittal", "coronal"):
        assert ours.orientation == {"sagittal": "PIR", "coronal": "LIP"}[kind]
    elif kind == "ct-rescaled":
        ds = case.header
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (2.0, -1024.0)
        assert ds.PixelRepresentation == 1 and ours.data.min() < -900


# --- NIfTI and MGZ ----------------------------------------------------------------


def test_nifti_and_mgz_match_nibabel(tmp_path: Path) -> None:
    files = nibabel_reference_files(tmp_path)
    compared, refused, problems = [], [], []
    for path in files:
        reader = read_mgh if path.name.endswith((".mgz", ".mgh")) else read_nifti
        try:
            ours = reader(path)
        except ImagingError as exc:
            refused.append(f"{path.name}: {exc.reason}")
            continue
        compared.append(path.name)
        img = nib.load(path)
        data = np.asanyarray(img.dataobj)
        if data.ndim > 3:
            data = data.reshape(*data.shape[:3], -1)[..., 0]
        while data.ndim < 3:
            data = data[..., np.newaxis]
        data = np.where(np.isfinite(data), data, 0)
        try:
            assert ours.shape == data.shape, (ours.shape, data.shape)
            np.testing.assert_allclose(ours.affine_ras, img.affine, atol=1e-4, rtol=0)
            if ours.data.dtype.kind == "f":
                data = data.astype(np.float32)
            np.testing.assert_array_equal(ours.data, data)
        except AssertionError as exc:
            problems.append(f"{path.name}: {exc}")
    assert len(compared) >= 18, (compared, refused)
    assert all("Cifti2" in r for r in refused), refused
    assert not problems, "\n".join(problems)


# --- label maps land where their image is ------------------------------------------


def _catalog(tmp_path: Path) -> tuple[Database, ImportSettings]:
    tmp_path.mkdir(parents=True)
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    migrate.upgrade(url)
    return Database(url), ImportSettings(
        tmp_path / "store", tmp_path / "previews", preview_max_dim=96, max_voxels=50_000_000
    )


def _read_vti_gz(path: Path) -> vtkImageData:
    raw = path.with_suffix("")  # labels.vti.gz -> labels.vti
    raw.write_bytes(gzip.decompress(path.read_bytes()))
    reader = vtkXMLImageDataReader()
    reader.SetFileName(str(raw))
    reader.Update()
    return reader.GetOutput()


def _read_label_preview(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Label values of the stored preview, ``(i, j, k)``, and its voxel-to-RAS affine.

    The preview image must be on the very same grid.
    """
    image = _read_vti_gz(folder / "labels.vti.gz")
    grey = _read_vti_gz(folder / "image.vti.gz")
    grid = (image.GetDimensions(), image.GetOrigin(), image.GetSpacing())
    assert (grey.GetDimensions(), grey.GetOrigin(), grey.GetSpacing()) == grid
    nx, ny, nz = image.GetDimensions()
    rgba = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(nz, ny, nx, 4)
    rgba = rgba.transpose(2, 1, 0, 3)
    meta = json.loads((folder / "meta.json").read_text())
    labels = np.zeros(rgba.shape[:3], np.uint16)
    for label in meta["labels"]:
        colour = np.all(rgba[..., :3] == label["color"], axis=-1) & (rgba[..., 3] > 0)
        labels[colour] = label["value"]
    assert np.all((labels > 0) == (rgba[..., 3] > 0)), "a labelled colour is not in the table"
    affine = np.diag([*image.GetSpacing(), 1.0])
    affine[:3, 3] = image.GetOrigin()
    return labels, affine


def _import_and_check_labels(tmp_path: Path, image_folder: Path, label_path: Path) -> None:
    db, settings = _catalog(tmp_path / "catalog")
    try:
        (source,) = discover([image_folder]).sources
        source = replace(source, label_path=label_path)
        report = import_study(db, settings, "geometry", source)
        assert report.refused == [] and len(report.imported) == 1, report
        with db.session() as s:
            study = s.get(Study, report.imported[0])
            assert study is not None
            uid = study.uid
            counts = {lab.value: lab.voxel_count for lab in study.segmentations[0].labels}
    finally:
        db.dispose()

    label_img = nib.load(label_path)
    reference = np.asanyarray(label_img.dataobj).astype(np.int64)
    expected_counts = {v: int(c) for v, c in enumerate(np.bincount(reference.ravel())) if v and c}
    assert counts == expected_counts

    stored, preview_affine = _read_label_preview(settings.preview_dir / uid)
    # Every preview voxel centre, mapped into the label file: a whole voxel index.
    grid = np.indices(stored.shape).reshape(3, -1)
    world = preview_affine[:3, :3] @ grid + preview_affine[:3, 3:4]
    index = np.linalg.solve(label_img.affine, np.vstack([world, np.ones(world.shape[1])]))[:3]
    whole = np.rint(index).astype(np.int64)
    assert np.max(np.abs(index - whole)) < 1e-3, "preview voxels fall between label voxels"
    expected = reference[whole[0], whole[1], whole[2]].reshape(stored.shape)
    assert np.count_nonzero(expected) > 100
    np.testing.assert_array_equal(stored, expected)


def test_mni_tissue_labels_land_on_the_same_world_positions(tmp_path: Path) -> None:
    from nilearn import datasets

    template = datasets.load_mni152_template(resolution=1)
    gm = datasets.load_mni152_gm_template(resolution=1).get_fdata(dtype=np.float32)
    wm = datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float32)
    labels = np.zeros(gm.shape, np.uint8)
    labels[(gm > 0.5) & (gm >= wm)] = 1
    labels[(wm > 0.5) & (wm > gm)] = 2
    folder = tmp_path / "mni"
    folder.mkdir()
    image = np.rint(template.get_fdata(dtype=np.float32) * 255).astype(np.int16)
    nib.save(nib.Nifti1Image(image, template.affine), folder / "mni.nii.gz")
    label_path = tmp_path / "mni-label.nii.gz"
    nib.save(nib.Nifti1Image(labels, template.affine), label_path)
    _import_and_check_labels(tmp_path, folder, label_path)


def test_dicom_labels_land_on_the_same_world_positions(generated, tmp_path: Path) -> None:
    case, _ = generated["sagittal"]
    # The label map is written on the grid SimpleITK reads, not portal's.
    data, affine = read_sitk_series(case.folder)
    labels = np.zeros(data.shape, np.uint8)
    labels[data > np.percentile(data, 60)] = 1
    labels[data > np.percentile(data, 90)] = 2
    label_path = tmp_path / "sagittal-label.nii.gz"
    nib.save(nib.Nifti1Image(labels, affine), label_path)
    _import_and_check_labels(tmp_path, case.folder, label_path)
