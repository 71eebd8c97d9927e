"""Write a Volume as a single-frame DICOM series (MR or CT Image Storage).

Used to build demo and test data from real NIfTI images; the output reads
back through :func:`portal.imaging.dicom.read_dicom_series` with the same
RAS affine (to DS precision, far below 1e-4 mm) and the same voxel values.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from portal.imaging.volume import LPS_TO_RAS, Volume

__all__ = ["SOP_CLASS_BY_MODALITY", "write_dicom_series"]

logger = logging.getLogger(__name__)

#: Storage SOP class written for each supported modality.
SOP_CLASS_BY_MODALITY = {"MR": MRImageStorage, "CT": CTImageStorage}

_UINT16_SPAN = 65535


def _ds(value: float) -> str:
    """A decimal string of at most 16 characters, as DICOM's DS requires."""
    return format_number_as_ds(float(value))


def _stored_pixels(data: np.ndarray) -> tuple[np.ndarray, float | None, float | None]:
    """Choose int16/uint16 storage; return (stored, slope, intercept).

    Whole-number data is stored exactly (with an intercept if its range needs
    one); other float data is quantised to 65536 levels between its minimum
    and maximum, so it reads back within half a quantisation step.
    """
    integral = data.dtype.kind in "biu" or bool(np.array_equal(data, np.round(data)))
    low = float(data.min()) if data.size else 0.0
    high = float(data.max()) if data.size else 0.0
    if integral:
        if -32768 <= low and high <= 32767:
            return data.astype(np.int16), None, None
        if 0 <= low and high <= _UINT16_SPAN:
            return data.astype(np.uint16), None, None
        if high - low <= _UINT16_SPAN:
            return (data - low).astype(np.uint16), 1.0, low
    # Use the slope and intercept exactly as they will be parsed back from DS.
    slope = float(_ds((high - low) / _UINT16_SPAN)) if high > low else 1.0
    intercept = float(_ds(low))
    quantised = np.rint((data.astype(np.float64) - intercept) / slope)
    return np.clip(quantised, 0, _UINT16_SPAN).astype(np.uint16), slope, intercept


def _uid(seed: str | None, *parts: object) -> UID:
    if seed is None:
        return generate_uid()
    return generate_uid(entropy_srcs=[seed, *(str(p) for p in parts)])


def _base_dataset(
    *,
    modality: str,
    sop_class: str,
    patient_name: str,
    patient_id: str,
    study_description: str,
    series_description: str,
    study_uid: UID,
    series_uid: UID,
    frame_uid: UID,
    when: datetime.datetime | None,
) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    date = when.strftime("%Y%m%d") if when else ""
    time = when.strftime("%H%M%S") if when else ""
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = time
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = study_description
    ds.SeriesDescription = series_description
    ds.SeriesNumber = 1
    ds.Manufacturer = ""
    ds.PatientPosition = "HFS"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    if modality == "MR":
        # Type 1/2 attributes of the MR Image module; "RM" = research mode.
        ds.ScanningSequence = "RM"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "3D"
        ds.RepetitionTime = ""
        ds.EchoTime = ""
        ds.EchoTrainLength = ""
    else:
        ds.KVP = ""
        ds.AcquisitionNumber = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    return ds


def write_dicom_series(
    volume: Volume,
    folder: Path,
    *,
    patient_name: str,
    study_description: str,
    series_description: str,
    modality: str = "MR",
    patient_id: str = "",
    uid_seed: str | None = None,
    study_datetime: datetime.datetime | None = None,
) -> list[Path]:
    """Write ``volume`` as one DICOM file per ``k`` slice.

    Parameters
    ----------
    volume : Volume
        Any grid whose ``i`` and ``j`` axes are perpendicular (oblique is fine).
        A left-handed voxel order (negative affine determinant, e.g. LAS) is
        written with the slice axis reversed, because DICOM slice order comes
        from positions: reading it back gives the same voxels in world space,
        with ``k`` running the other way.
    folder : pathlib.Path
        Created if needed. Files are named by a hash of their SOPInstanceUID,
        so their name order is unrelated to slice order.
    patient_name, study_description, series_description : str
        Written as given.
    modality : str
        ``"MR"`` (MR Image Storage) or ``"CT"`` (CT Image Storage).
    patient_id : str
        PatientID, empty by default.
    uid_seed : str, optional
        When given, every UID is derived from it, so the output is
        byte-for-byte reproducible; otherwise UIDs are random.
    study_datetime : datetime.datetime, optional
        Study, series and content date/time; left empty when not given.

    Returns
    -------
    list of pathlib.Path
        The written files in slice order.
    """
    if modality not in SOP_CLASS_BY_MODALITY:
        raise ValueError(
            f'Argument "modality" must be one of {sorted(SOP_CLASS_BY_MODALITY)}, got {modality!r}.'
        )
    data = volume.data
    affine_lps = LPS_TO_RAS @ volume.affine_ras
    if np.linalg.det(affine_lps[:3, :3]) < 0:
        logger.debug("left-handed voxel order: writing slices in reverse k order")
        data = data[:, :, ::-1]
        affine_lps = affine_lps.copy()
        affine_lps[:3, 3] += affine_lps[:3, 2] * (data.shape[2] - 1)
        affine_lps[:3, 2] *= -1
    col_spacing, row_spacing = np.linalg.norm(affine_lps[:3, :2], axis=0)
    row_cos = affine_lps[:3, 0] / col_spacing
    col_cos = affine_lps[:3, 1] / row_spacing
    if abs(float(row_cos @ col_cos)) > 1e-6:
        raise ValueError('Argument "volume" must have perpendicular i and j axes (no shear).')
    normal = np.cross(row_cos, col_cos)
    step_lps = affine_lps[:3, 2]
    slice_gap = float(step_lps @ normal)

    stored, slope, intercept = _stored_pixels(data)
    if modality == "CT" and slope is None:
        slope, intercept = 1.0, 0.0  # required (type 1) in the CT Image module

    study_uid = _uid(uid_seed, "study")
    series_uid = _uid(uid_seed, "series")
    base = _base_dataset(
        modality=modality,
        sop_class=SOP_CLASS_BY_MODALITY[modality],
        patient_name=patient_name,
        patient_id=patient_id,
        study_description=study_description,
        series_description=series_description,
        study_uid=study_uid,
        series_uid=series_uid,
        frame_uid=_uid(uid_seed, "frame-of-reference"),
        when=study_datetime,
    )
    base.Rows, base.Columns = int(data.shape[1]), int(data.shape[0])
    base.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    base.ImageOrientationPatient = [_ds(v) for v in (*row_cos, *col_cos)]
    base.PixelSpacing = [_ds(row_spacing), _ds(col_spacing)]
    base.SliceThickness = _ds(abs(slice_gap))
    base.SpacingBetweenSlices = _ds(abs(slice_gap))
    if slope is not None and intercept is not None:
        base.RescaleSlope = _ds(slope)
        base.RescaleIntercept = _ds(intercept)
        base.RescaleType = "HU" if modality == "CT" else "US"

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    little_endian = stored.dtype.newbyteorder("<")
    written = []
    for k in range(data.shape[2]):
        ds = base.copy()
        sop_uid = _uid(uid_seed, "instance", k) if uid_seed is not None else _uid(None)
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = k + 1
        position = affine_lps[:3, 3] + k * step_lps
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.SliceLocation = _ds(float(position @ normal))
        # Frames are stored (rows, columns) = (j, i).
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).astype(little_endian).tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds.file_meta = meta
        name = hashlib.sha1(sop_uid.encode("ascii")).hexdigest()[:16] + ".dcm"
        path = folder / name
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        written.append(path)
    logger.debug("wrote DICOM series of %d slices to %s", len(written), folder)
    return written
