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
from datetime import UTC, datetime
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
from portal.imaging.dicom_seg import (
    is_dicom_seg,
    read_dicom_seg,
    referenced_instance_uids,
    referenced_series_uid,
)
from portal.imaging.errors import ImagingError
from portal.imaging.label_tables import find_label_table
from portal.imaging.labels import Label, default_label_table, labels_to_rgba
from portal.imaging.mgh import read_mgh
from portal.imaging.nifti import nifti_volume_count, read_label_nifti, read_nifti
from portal.imaging.nrrd import nrrd_data_file, read_nrrd, read_seg_nrrd
from portal.imaging.preview import (
    build_preview,
    label_surfaces,
    mosaic_png,
    thumbnail_png,
    vti_bytes,
)
from portal.imaging.resample import grid_difference, resample_labels
from portal.imaging.volume import Volume as ImageVolume
from portal.imaging.volume import check_same_grid
from portal.imaging.windowing import Window
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
    # Off by default: a label map on another grid is usually the wrong file, and
    # resampling it would hide that. The user turns it on per import.
    resample_labels: bool = False

    @classmethod
    def of(cls, settings: Settings, *, resample_labels: bool = False) -> ImportSettings:
        return cls(
            store_dir=settings.store_dir,
            preview_dir=settings.preview_dir,
            preview_max_dim=settings.preview_max_dim,
            max_voxels=settings.max_voxels,
            max_archive_bytes=settings.max_archive_mb * 1024**2,
            resample_labels=resample_labels,
        )


@dataclass
class ImportReport:
    """What an import did: new study ids, names already present, refused files with reasons.

    `notes` holds `(path, note)` for what is not an error but should be known: files
    skipped on purpose (structured reports, RT plans, presentation states), gantry tilt,
    a label map resampled on request, a new version of a study.
    """

    imported: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)

    def extend(self, other: ImportReport) -> None:
        self.imported += other.imported
        self.skipped += other.skipped
        self.refused += other.refused
        self.notes += other.notes


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
    # Identity across versions: the DICOM series, or the image's path under the folder
    # it was imported from. A source with a known lineage but new bytes is a new version.
    lineage: str = ""


# Volume files by kind; `.seg.nrrd` (Slicer segmentation) is only ever a label map.
VOLUME_SUFFIXES = {
    "nifti": (".nii.gz", ".nii"),
    "mgh": (".mgz", ".mgh"),
    "nrrd": (".nrrd", ".nhdr"),
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


@dataclass
class Discovery:
    """What `discover` found: studies to import, refused inputs, and notes."""

    sources: list[StudySource] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)


def _lineage(kind: str, path: Path, root: Path | None) -> str:
    try:
        relative = path.relative_to(root) if root is not None else Path(path.name)
    except ValueError:
        relative = Path(path.name)
    return f"{kind}:{(relative.parent / volume_stem(path)).as_posix()}"[:255]


def discover(paths: Iterable[Path], *, archives_expanded: bool = False) -> Discovery:
    """Turn files and folders into study sources.

    NIfTI, MGH and NRRD images are paired with a sibling label map named `<stem>-label`,
    `<stem>_seg` (and `-seg`, `_label`, `-segmentation`, `.seg.nrrd`), also when only the
    image file is named; every other file is offered to the DICOM reader, which groups
    what it can read by SeriesInstanceUID. A DICOM SEG is paired with the series it
    references. DICOM objects that are not images (SR, RT plans, presentation states)
    are skipped with a note, not refused.

    Returns
    -------
    Discovery
        `refused` holds `(path, reason)` for inputs that are not images, `notes`
        `(path, note)` for files skipped on purpose.
    """
    found = Discovery()
    refused = found.refused
    files: list[Path] = []
    roots: dict[Path, Path | None] = {}
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for p in sorted(p for p in path.rglob("*") if p.is_file()):
                files.append(p)
                roots.setdefault(p, path)
        elif path.is_file():
            files.append(path)
            roots.setdefault(path, None)
            for sibling in _sibling_labels(path):
                if sibling not in roots:
                    files.append(sibling)
                    roots[sibling] = None
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
    data_files: set[Path] = set()
    for f, kind in volumes.items():
        if f in label_files:
            continue
        image_paths: tuple[Path, ...] = (f,)
        if kind == "nrrd":
            try:
                detached = nrrd_data_file(f)
            except ImagingError as exc:
                refused.append((exc.path, exc.reason))
                continue
            if detached is not None:  # `.nhdr` + its data: one study, both files stored
                image_paths = (f, detached)
                data_files.add(detached.resolve())
        found.sources.append(
            StudySource(
                name=volume_stem(f),
                image_paths=image_paths,
                kind=kind,
                label_path=labels_by_image.get(f),
                lineage=_lineage(kind, f, roots.get(f)),
            )
        )
    zips = {f for f in files if f.suffix.lower() == ".zip"}
    if not archives_expanded:
        refused += [(str(f), ARCHIVE_NOT_HERE) for f in sorted(zips)]
    others = [
        f for f in files if f not in volumes and f not in zips and f.resolve() not in data_files
    ]
    if others:
        _discover_dicom(others, found)
    return found


def _seg_series(path: Path, series: list[DicomSeries]) -> str:
    """The SeriesInstanceUID a DICOM SEG segments.

    From its ReferencedSeriesSequence; a SEG without one (it is optional in some
    exporters) is matched by the SOP Instance UIDs of its source images instead.
    """
    try:
        return referenced_series_uid(path)
    except ImagingError:
        instances = referenced_instance_uids(path)
        if not instances:
            raise
    for candidate in series:
        for file in candidate.paths:
            header = pydicom.dcmread(
                file, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]
            )
            if str(header.get("SOPInstanceUID", "")) in instances:
                return candidate.series_uid
    raise ImagingError(path, "none of the images this DICOM SEG segments is in this import")


def _discover_dicom(files: list[Path], found: Discovery) -> None:
    """DICOM series (with their SEG objects) among `files`, into `found`."""
    skipped: list[tuple[Path, str]] = []
    unreadable: list[tuple[Path, str]] = []
    series = find_dicom_series(files, skipped=skipped, unreadable=unreadable)
    found.refused += [(str(path), reason) for path, reason in unreadable]
    in_series = {p.resolve() for s in series for p in s.paths}
    segs_by_series: dict[str, Path] = {}
    noted: set[Path] = {path.resolve() for path, _ in unreadable}
    for path, reason in skipped:
        noted.add(path.resolve())
        if not is_dicom_seg(path):
            found.notes.append((str(path), f"skipped: {reason}"))
            continue
        try:
            uid = _seg_series(path, series)
        except ImagingError as exc:
            found.refused.append((exc.path, exc.reason))
            continue
        if not any(s.series_uid == uid for s in series):
            found.refused.append(
                (
                    str(path),
                    f"DICOM SEG references series …{uid[-12:]}, which is not in this import",
                )
            )
        elif uid in segs_by_series:
            found.refused.append(
                (str(path), f"a second DICOM SEG for series …{uid[-12:]}; import it on its own")
            )
        else:
            segs_by_series[uid] = path
    for s in series:
        found.sources.append(
            StudySource(
                name=s.description or f"DICOM series …{s.series_uid[-8:]}",
                image_paths=tuple(s.paths),
                kind="dicom",
                label_path=segs_by_series.get(s.series_uid),
                modality=s.modality,
                series_uid=s.series_uid,
                lineage=f"dicom:{s.series_uid}"[:255],
            )
        )
    for f in files:
        resolved = f.resolve()
        if resolved not in in_series and resolved not in noted and not f.name.startswith("."):
            found.refused.append((str(f), NOT_AN_IMAGE))


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
) -> tuple[dict[str, bytes], Window]:
    """The browser payloads of a study (gzip .vti volumes, thumbnail, surfaces, metadata)
    and the window the grey levels were made with."""
    preview = build_preview(volume, labels, max_dim=max_dim)
    files = {
        "image.vti.gz": _gzip(vti_bytes(preview.image_u8, preview.spacing_mm, preview.origin_mm)),
        "thumb.png": thumbnail_png(preview, table or None),
        "mosaic.png": mosaic_png(preview, table or None),
        "meta.json": json.dumps(
            {
                "shape": list(preview.shape),
                "spacing_mm": list(preview.spacing_mm),
                "origin_mm": list(preview.origin_mm),
                "step": list(preview.step),
                "rgb": preview.is_rgb,
                "window": [preview.window.low, preview.window.high],
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
    return files, preview.window


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


@dataclass
class _LabelMap:
    labels: np.ndarray
    table: list[Label]  # from the file or a sidecar; empty: generate
    notes: list[str]


def _labels_on_grid(
    source: StudySource, volume: ImageVolume, settings: ImportSettings
) -> _LabelMap:
    """Read the study's label map onto the image grid, with its own label table if any."""
    path = source.label_path
    assert path is not None
    notes: list[str] = []
    if source.kind == "dicom" and volume_kind(path) is None:  # a DICOM SEG
        labels, table, seg_notes = read_dicom_seg(
            path, volume.affine_ras, volume.shape, max_voxels=settings.max_voxels
        )
        return _LabelMap(labels, table, list(seg_notes))
    labels, label_affine, table = _read_labels(path, settings.max_voxels)
    try:
        check_same_grid(volume.affine_ras, volume.shape, label_affine, labels.shape, path=path)
    except ImagingError:
        if not settings.resample_labels:
            raise
        notes.append(grid_difference(volume.affine_ras, volume.shape, label_affine, labels.shape))
        labels = resample_labels(labels, label_affine, volume.affine_ras, volume.shape)
    if not table:
        sidecar, table = find_label_table(path, volume_stem(path))
        if table:
            notes.append(f"label names from {sidecar.name}")
    return _LabelMap(labels, table, notes)


def _full_table(
    file_table: list[Label], counts: dict[int, int], names: dict[int, str]
) -> list[Label]:
    """The label table to store: the file's own segments, or the values present."""
    if not file_table:
        return default_label_table(sorted(counts), names or None)
    by_value = {lab.value: lab for lab in file_table}
    if len(file_table) > 255:
        # A shared lookup table (FreeSurfer's lists ~1300 structures): keep what is present.
        by_value = {v: lab for v, lab in by_value.items() if v in counts}
    extra = default_label_table(v for v in counts if v not in by_value)
    return sorted([*by_value.values(), *extra], key=lambda lab: lab.value)


def _value_range(volume: ImageVolume) -> tuple[float | None, float | None]:
    if volume.is_rgb or volume.data.size == 0:
        return None, None
    return float(volume.data.min()), float(volume.data.max())


def _current_version(session: Session, project_id: int, lineage: str) -> Study | None:
    if not lineage:
        return None
    stmt = select(Study).where(
        Study.project_id == project_id, Study.lineage == lineage, Study.superseded_at.is_(None)
    )
    return session.scalars(stmt).first()


def import_study(
    db: Database,
    settings: ImportSettings,
    project_name: str,
    source: StudySource,
    user_id: int | None = None,
) -> ImportReport:
    """Import one study in one transaction; see the module docstring for the guarantees.

    A source whose lineage (DICOM series, or path under the import folder) is already in
    the project with other bytes becomes the next version of that study: the old version
    is kept, marked superseded, and no longer listed.
    """
    report = ImportReport()
    try:
        volume, patient_name = _read_image(source, settings.max_voxels)
        label_map = (
            _labels_on_grid(source, volume, settings) if source.label_path is not None else None
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
    labels = label_map.labels if label_map is not None else None
    counts = label_counts(labels) if labels is not None else {}
    table = _full_table(label_map.table if label_map else [], counts, source.label_names)
    previews, window = _preview_files(volume, labels, table, settings.preview_max_dim)
    notes = [*volume.notes, *(label_map.notes if label_map else [])]
    volume_count = nifti_volume_count(source.image_paths[0]) if source.kind == "nifti" else 1
    if volume_count > 1:
        notes.append(
            f"4-D: {volume_count} volumes; the first is shown, the others one by one in the pane"
        )
    value_min, value_max = _value_range(volume)
    where = str(source.image_paths[0])

    with db.session() as session:
        project = ensure_project(session, project_name)
        if _already_imported(session, project_name, source_hash):
            report.skipped.append(source.name)  # another import won the race
            return report
        previous = _current_version(session, project.id, source.lineage)
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
                dtype="rgb24" if volume.is_rgb else volume.dtype,
                source_hash=source_hash,
                segmentation_count=1 if labels is not None else 0,
                volume_count=volume_count,
                value_min=value_min,
                value_max=value_max,
                window_level=(window.low + window.high) / 2,
                window_width=window.high - window.low,
                notes=notes,
                lineage=source.lineage or f"study:{study_uid}",
                version=previous.version + 1 if previous is not None else 1,
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
            if previous is not None:
                previous.superseded_at = datetime.now(UTC)
                notes.append(f"version {study.version}: replaces study {previous.id}")
            session.add(study)
            session.flush()
            audit.record(
                session,
                user_id,
                "study.import",
                f"study:{study.id}",
                f"files={len(stored)} segmentations={study.segmentation_count} "
                f"version={study.version}",
            )
            # Commit inside the store transaction: if the commit fails, the files go too.
            session.commit()
            report.imported.append(study.id)
    report.notes += [(where, note) for note in notes]
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
    found = discover(paths)
    report = import_sources(db, settings, project_name, found.sources, user_id, progress)
    report.refused = found.refused + report.refused
    report.notes = found.notes + report.notes
    return report
