"""Reading a study's image: from the files being imported, or back from the store.

Import and the previews made later on demand (for studies imported before a preview
file existed) read the image the same way, so a file made later matches one made at
import voxel for voxel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydicom

from portal.db.models import Study
from portal.imaging.dicom import DicomSeries, find_dicom_series, read_dicom_series
from portal.imaging.errors import ImagingError
from portal.imaging.mgh import read_mgh
from portal.imaging.nifti import read_nifti
from portal.imaging.nrrd import read_nrrd
from portal.imaging.volume import Volume
from portal.services.discovery import StudySource
from portal.services.errors import NotFound

__all__ = ["SourceHeader", "read_image", "read_stored_image", "stored_source"]


@dataclass(frozen=True)
class SourceHeader:
    """What the image header says beyond the voxels (DICOM only; empty otherwise).

    Parameters
    ----------
    patient_name : str
        PatientName, for the catalog (never logged).
    frame_of_reference : str or None
        FrameOfReferenceUID: images sharing it share world coordinates.
    monochrome1 : bool
        PhotometricInterpretation MONOCHROME1: the reader inverted the voxels.
    """

    patient_name: str = ""
    frame_of_reference: str | None = None
    monochrome1: bool = False


def read_image(source: StudySource, max_voxels: int) -> tuple[Volume, SourceHeader]:
    """Read a study's image and the header facts kept beside it.

    Raises
    ------
    ImagingError
        Naming the file, when it cannot be read.
    """
    path = source.image_paths[0]
    if source.kind == "nifti":
        return read_nifti(path, max_voxels=max_voxels), SourceHeader()
    if source.kind == "mgh":
        return read_mgh(path, max_voxels=max_voxels), SourceHeader()
    if source.kind == "nrrd":
        return read_nrrd(path, max_voxels=max_voxels), SourceHeader()
    if source.series_uid:
        # discover() already grouped these files by reading their headers: reuse that.
        series = DicomSeries(
            series_uid=source.series_uid,
            paths=list(source.image_paths),
            modality=source.modality,
            description=source.name,
        )
    else:  # files named by the caller (the demo): group them here
        found = find_dicom_series(source.image_paths)
        if len(found) != 1:
            raise ImagingError(path, f"expected one DICOM series, found {len(found)}")
        series = found[0]
    volume = read_dicom_series(series, max_voxels=max_voxels)
    header = pydicom.dcmread(
        series.paths[0],
        stop_before_pixels=True,
        specific_tags=["PatientName", "PhotometricInterpretation", "FrameOfReferenceUID"],
    )
    return volume, SourceHeader(
        patient_name=str(header.get("PatientName", "") or ""),
        frame_of_reference=str(header.get("FrameOfReferenceUID", "") or "") or None,
        monochrome1=str(header.get("PhotometricInterpretation", "")) == "MONOCHROME1",
    )


def stored_source(study: Study, store_dir: Path) -> StudySource:
    """The study's first stored volume as a source to read again (no label map).

    Raises
    ------
    NotFound
        If the study has no stored image, or its files are gone from the store.
    """
    if not study.volumes:
        raise NotFound(f"study {study.id} has no stored image")
    volume = study.volumes[0]
    paths = tuple(store_dir / f for f in volume.files)
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise NotFound(f"stored files of study {study.id} are missing: {', '.join(missing[:3])}")
    return StudySource(
        name=study.name,
        image_paths=paths,
        kind=volume.format,
        modality=study.modality,
        series_uid=volume.series_uid,
        lineage=study.lineage,
    )


def read_stored_image(
    study: Study, store_dir: Path, max_voxels: int
) -> tuple[Volume, SourceHeader]:
    """:func:`read_image` of the study's stored original (the first volume of a 4-D file)."""
    return read_image(stored_source(study, store_dir), max_voxels)
