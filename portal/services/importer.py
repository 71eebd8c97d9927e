"""Import images and their segmentations into the catalog, one transaction per study.

Everything that can fail (reading, geometry checks, previews) happens before anything is
written; then store files and catalog rows are added together, and a failure in either
takes back both. Re-importing the same bytes into the same project adds nothing.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.config import Settings
from portal.db.models import Label as LabelRow
from portal.db.models import Project, Segmentation, Study, Volume
from portal.db.session import Database
from portal.imaging.archive import extract_zip
from portal.imaging.dicom import DicomSeries, find_dicom_series, read_dicom_series
from portal.imaging.errors import ImagingError
from portal.imaging.labels import Label, default_label_table, labels_to_rgba
from portal.imaging.mgh import read_mgh
from portal.imaging.nifti import read_label_nifti, read_nifti
from portal.imaging.nrrd import read_nrrd, read_seg_nrrd
from portal.imaging.preview import (
    build_preview,
    label_surfaces,
    mosaic_png,
    thumbnail_png,
    vti_bytes,
)
from portal.imaging.volume import Volume as ImageVolume
from portal.imaging.volume import check_same_grid
from portal.services import audit
from portal.services.catalog import ensure_project
from portal.services.store import StoreTransaction, combined_hash, file_sha256

log = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii.gz", ".nii")
# case.nii.gz <- case-label.nii.gz, case_seg.nii.gz, case-seg.nii.gz, case_label.nii.gz
NOT_AN_IMAGE = "not a NIfTI, MGH/MGZ, NRRD or DICOM image file"
LABEL_PATTERN = re.compile(r"^(?P<stem>.+?)[-_](label|labels|seg|segmentation)$", re.IGNORECASE)


@dataclass(frozen=True)
class ImportSettings:
    store_dir: Path
    preview_dir: Path
    preview_max_dim: int
    max_voxels: int
    max_archive_bytes: int = 16 * 1024**3

    @classmethod
    def of(cls, settings: Settings) -> ImportSettings:
        return cls(
            store_dir=settings.store_dir,
            preview_dir=settings.preview_dir,
            preview_max_dim=settings.preview_max_dim,
            max_voxels=settings.max_voxels,
            max_archive_bytes=settings.max_archive_mb * 1024**2,
        )


@dataclass
class ImportReport:
    """What an import did: new study ids, names already present, refused files with reasons."""

    imported: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def extend(self, other: ImportReport) -> None:
        self.imported += other.imported
        self.skipped += other.skipped
        self.refused += other.refused


@dataclass(frozen=True)
class StudySource:
    """One study to import: its image files, an optional label map, and how to name it."""

    name: str
    image_paths: tuple[Path, ...]
    kind: str  # "nifti" | "dicom"
    label_path: Path | None = None
    label_names: dict[int, str] = field(default_factory=dict)
    modality: str = ""
    series_uid: str = ""


# Volume files by kind; `.seg.nrrd` (Slicer segmentation) is only ever a label map.
VOLUME_SUFFIXES = {
    "nifti": (".nii.gz", ".nii"),
    "mgh": (".mgz", ".mgh"),
    "nrrd": (".nrrd",),
}
SEG_NRRD = ".seg.nrrd"
LABEL_SUFFIXES = (
    "-label",
    "_label",
    "-labels",
    "_labels",
    "_seg",
    "-seg",
    "-segmentation",
    "_segmentation",
)


def volume_kind(path: Path) -> str | None:
    """`"nifti"`, `"mgh"`, `"nrrd"`, `"seg"` (a `.seg.nrrd`) or None, from the file name."""
    name = path.name.lower()
    if name.endswith(SEG_NRRD):
        return "seg"
    for kind, suffixes in VOLUME_SUFFIXES.items():
        if name.endswith(suffixes):
            return kind
    return None


def volume_stem(path: Path) -> str:
    """The name without its volume suffix (`case.seg.nrrd` -> `case`)."""
    name = path.name
    for suffix in (SEG_NRRD, *(s for group in VOLUME_SUFFIXES.values() for s in group)):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _sibling_labels(image: Path) -> list[Path]:
    """Label maps on disk beside an image named on its own (`case` -> `case-label`, ...)."""
    kind = volume_kind(image)
    if kind in (None, "seg") or LABEL_PATTERN.match(volume_stem(image)):
        return []
    stem = volume_stem(image)
    names = [f"{stem}{SEG_NRRD}"] + [
        f"{stem}{suffix}{ext}"
        for suffix in LABEL_SUFFIXES
        for group in VOLUME_SUFFIXES.values()
        for ext in group
    ]
    return [c for n in names if (c := image.with_name(n)).is_file()]


ARCHIVE_NOT_HERE = "ZIP archives are unpacked by import jobs (portal import, upload, API)"
MAX_ARCHIVE_ENTRIES = 200_000


def _zips_in(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.suffix.lower() == ".zip" and p.is_file()
            )
        elif path.suffix.lower() == ".zip" and path.is_file():
            found.append(path)
    return found


def expand_archives(
    paths: Iterable[Path], work_dir: Path, max_total_bytes: int
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Unpack every ZIP archive among `paths` (or in their folders) under `work_dir`.

    Returns the unpacked folders and `(archive, reason)` for archives refused whole
    (unsafe entry names, symlinks, bombs, too large): nothing of those is left on disk.
    """
    folders: list[Path] = []
    refused: list[tuple[str, str]] = []
    for index, archive in enumerate(_zips_in(paths)):
        work_dir.mkdir(parents=True, exist_ok=True)
        dest = work_dir / f"{index}-{archive.stem}"
        try:
            extract_zip(
                archive, dest, max_total_bytes=max_total_bytes, max_files=MAX_ARCHIVE_ENTRIES
            )
        except ImagingError as exc:
            refused.append((str(archive), exc.reason))
            continue
        folders.append(dest)
    return folders, refused


def discover(
    paths: Iterable[Path], *, archives_expanded: bool = False
) -> tuple[list[StudySource], list[tuple[str, str]]]:
    """Turn files and folders into study sources.

    NIfTI images are paired with a sibling label map named `<stem>-label`, `<stem>_seg`
    (and `-seg`, `_label`, `-segmentation`), also when only the image file is named;
    every other file is offered to the DICOM reader, which groups what it can read by
    SeriesInstanceUID.

    Returns
    -------
    sources, refused
        Refused holds `(path, reason)` for inputs that are neither.
    """
    files: list[Path] = []
    refused: list[tuple[str, str]] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            files.append(path)
            files.extend(p for p in _sibling_labels(path) if p not in files)
        else:
            refused.append((str(path), "no such file or folder"))

    volumes = {f: kind for f in files if (kind := volume_kind(f)) is not None}
    images = {(f.parent, volume_stem(f)): f for f, kind in volumes.items() if kind != "seg"}
    labels_by_image: dict[Path, Path] = {}
    label_files: set[Path] = set()
    for f, kind in volumes.items():
        stem = volume_stem(f)
        match = LABEL_PATTERN.match(stem)
        image_stem = stem if kind == "seg" else (match["stem"] if match else None)
        image = images.get((f.parent, image_stem)) if image_stem else None
        if image is not None and image != f:
            labels_by_image[image] = f
            label_files.add(f)
        elif kind == "seg":
            label_files.add(f)
            refused.append((str(f), "a segmentation needs its image beside it, named the same"))
    sources = [
        StudySource(
            name=volume_stem(f),
            image_paths=(f,),
            kind=kind,
            label_path=labels_by_image.get(f),
        )
        for f, kind in volumes.items()
        if f not in label_files
    ]
    zips = {f for f in files if f.suffix.lower() == ".zip"}
    if not archives_expanded:
        refused += [(str(f), ARCHIVE_NOT_HERE) for f in sorted(zips)]
    others = [f for f in files if f not in volumes and f not in zips]
    if others:
        series = find_dicom_series(others)
        in_series = {p.resolve() for s in series for p in s.paths}
        for s in series:
            sources.append(
                StudySource(
                    name=s.description or f"DICOM series …{s.series_uid[-8:]}",
                    image_paths=tuple(s.paths),
                    kind="dicom",
                    modality=s.modality,
                    series_uid=s.series_uid,
                )
            )
        for f in others:
            if f.resolve() not in in_series and not f.name.startswith("."):
                refused.append((str(f), NOT_AN_IMAGE))
    return sources, refused


def _read_image(source: StudySource, max_voxels: int) -> tuple[ImageVolume, str]:
    """Read the image; return it with the patient name from the DICOM header, if any."""
    path = source.image_paths[0]
    if source.kind == "nifti":
        return read_nifti(path, max_voxels=max_voxels), ""
    if source.kind == "mgh":
        return read_mgh(path, max_voxels=max_voxels), ""
    if source.kind == "nrrd":
        return read_nrrd(path, max_voxels=max_voxels), ""
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
        series.paths[0], stop_before_pixels=True, specific_tags=["PatientName"]
    )
    return volume, str(header.get("PatientName", "") or "")


def _already_imported(session: Session, project_name: str, source_hash: str) -> bool:
    stmt = (
        select(Study.id)
        .join(Project)
        .where(Project.name == project_name, Study.source_hash == source_hash)
    )
    return session.scalar(stmt) is not None


def _preview_files(
    volume: ImageVolume, labels: np.ndarray | None, table: list[Label], max_dim: int
) -> dict[str, bytes]:
    """The browser payloads of a study: gzip .vti volumes, thumbnail, surfaces, metadata."""
    preview = build_preview(volume, labels, max_dim=max_dim)
    files = {
        "image.vti.gz": _gzip(vti_bytes(preview.image_u8, preview.spacing_mm, preview.origin_mm)),
        "thumb.png": thumbnail_png(preview, table or None),
        "mosaic.png": mosaic_png(preview, table or None),
        "meta.json": json.dumps(
            {
                "shape": list(preview.image_u8.shape),
                "spacing_mm": list(preview.spacing_mm),
                "origin_mm": list(preview.origin_mm),
                "step": list(preview.step),
                "labels": [
                    {"value": lab.value, "name": lab.name, "color": list(lab.color)}
                    for lab in table
                ],
            }
        ).encode(),
    }
    if preview.labels is not None:
        rgba = labels_to_rgba(preview.labels, table)
        files["labels.vti.gz"] = _gzip(vti_bytes(rgba, preview.spacing_mm, preview.origin_mm))
        files["surfaces.json"] = json.dumps(label_surfaces(preview, table)).encode()
    return files


def _read_labels(path: Path, max_voxels: int) -> tuple[np.ndarray, np.ndarray, list[Label]]:
    """A label map as uint16 (i, j, k), its affine, and the file's own label table if any."""
    kind = volume_kind(path)
    if kind == "seg":
        return read_seg_nrrd(path, max_voxels=max_voxels)
    if kind == "nifti":
        labels, affine = read_label_nifti(path, max_voxels=max_voxels)
        return labels, affine, []
    volume = (
        read_mgh(path, max_voxels=max_voxels)
        if kind == "mgh"
        else read_nrrd(path, max_voxels=max_voxels)
    )
    data = volume.data
    if data.size and (
        not np.all(np.isfinite(data))
        or data.min() < 0
        or data.max() > 65535
        or not np.array_equal(data, np.round(data))
    ):
        raise ImagingError(path, "a label map must hold whole numbers from 0 to 65535")
    return data.astype(np.uint16), volume.affine_ras, []


def label_counts(labels: np.ndarray) -> dict[int, int]:
    """Voxels per label value (0, the background, left out), on the full label map."""
    counts = np.bincount(labels.ravel())
    return {int(v): int(c) for v, c in enumerate(counts) if v and c}


def _voxel_mm3(volume: ImageVolume) -> float:
    return float(abs(np.linalg.det(volume.affine_ras[:3, :3])))


def _gzip(data: bytes) -> bytes:
    # Level 6 once at import; mtime=0 keeps the bytes reproducible.
    return gzip.compress(data, compresslevel=6, mtime=0)


def _label_table(counts: dict[int, int], names: dict[int, str]) -> list[Label]:
    return default_label_table(sorted(counts), names or None)


def import_study(
    db: Database,
    settings: ImportSettings,
    project_name: str,
    source: StudySource,
    user_id: int | None = None,
) -> ImportReport:
    """Import one study in one transaction; see the module docstring for the guarantees."""
    report = ImportReport()
    try:
        volume, patient_name = _read_image(source, settings.max_voxels)
        labels = None
        file_table: list[Label] = []
        if source.label_path is not None:
            labels, label_affine, file_table = _read_labels(source.label_path, settings.max_voxels)
            check_same_grid(
                volume.affine_ras,
                volume.shape,
                label_affine,
                labels.shape,
                path=source.label_path,
            )
    except ImagingError as exc:
        report.refused.append((exc.path, exc.reason))
        return report

    image_hashes = {p: file_sha256(p) for p in source.image_paths}
    label_hash = file_sha256(source.label_path) if source.label_path else ""
    source_hash = combined_hash([*image_hashes.values(), label_hash])

    with db.session() as session:
        if _already_imported(session, project_name, source_hash):
            report.skipped.append(source.name)
            return report
    # Previews are built before any transaction opens: they take seconds, and an open
    # SQLite write transaction would block every other writer (review flags) meanwhile.
    # From the full label map: a small structure the preview stride misses is still a label.
    counts = label_counts(labels) if labels is not None else {}
    table = file_table or _label_table(counts, source.label_names)
    previews = _preview_files(volume, labels, table, settings.preview_max_dim)

    with db.session() as session:
        project = ensure_project(session, project_name)
        if _already_imported(session, project_name, source_hash):
            report.skipped.append(source.name)  # another import won the race
            return report
        study_uid = uuid.uuid4().hex
        with StoreTransaction(settings.store_dir, settings.preview_dir) as store:
            stored = [store.add_source(p, h) for p, h in image_hashes.items()]
            study = Study(
                uid=study_uid,
                project_id=project.id,
                name=source.name[:255],
                patient_name=patient_name[:255],
                modality=(source.modality or volume.modality or "OT").upper()[:16],
                dim_i=volume.shape[0],
                dim_j=volume.shape[1],
                dim_k=volume.shape[2],
                spacing_mm=[float(s) for s in volume.spacing_mm],
                affine_ras=[[float(v) for v in row] for row in volume.affine_ras],
                orientation=volume.orientation,
                dtype=volume.dtype,
                source_hash=source_hash,
                segmentation_count=1 if labels is not None else 0,
            )
            study.volumes.append(
                Volume(
                    format=str(source.kind),
                    series_uid=source.series_uid,
                    description=volume.description[:255],
                    files=stored,
                    content_hash=combined_hash(image_hashes.values()),
                )
            )
            if source.label_path is not None:
                seg_file = store.add_source(source.label_path, label_hash)
                study.segmentations.append(
                    Segmentation(
                        name=volume_stem(source.label_path),
                        file=seg_file,
                        content_hash=label_hash,
                        labels=[
                            LabelRow(
                                value=lab.value,
                                name=lab.name,
                                color="#{:02x}{:02x}{:02x}".format(*lab.color),
                                voxel_count=counts.get(lab.value, 0),
                                volume_ml=round(
                                    counts.get(lab.value, 0) * _voxel_mm3(volume) / 1000.0, 3
                                ),
                            )
                            for lab in table
                        ],
                    )
                )
            store.add_previews(study_uid, previews)
            session.add(study)
            session.flush()
            audit.record(
                session,
                user_id,
                "study.import",
                f"study:{study.id}",
                f"files={len(stored)} segmentations={study.segmentation_count}",
            )
            # Commit inside the store transaction: if the commit fails, the files go too.
            session.commit()
            report.imported.append(study.id)
    log.info("imported study %s (%s files)", report.imported, len(source.image_paths))
    return report


def import_sources(
    db: Database,
    settings: ImportSettings,
    project_name: str,
    sources: Sequence[StudySource],
    user_id: int | None = None,
    progress: Callable[[StudySource], None] | None = None,
) -> ImportReport:
    """Import several studies, each in its own transaction."""
    report = ImportReport()
    for source in sources:
        report.extend(import_study(db, settings, project_name, source, user_id))
        if progress is not None:
            progress(source)
    return report


def import_paths(
    db: Database,
    settings: ImportSettings,
    project_name: str,
    paths: Iterable[Path],
    user_id: int | None = None,
    progress: Callable[[StudySource], None] | None = None,
) -> ImportReport:
    """Discover studies under `paths` and import them; see `discover` for the pairing rules."""
    sources, refused = discover(paths)
    report = import_sources(db, settings, project_name, sources, user_id, progress)
    report.refused = refused + report.refused
    return report
