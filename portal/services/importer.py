"""Import images and their segmentations into the catalog, one transaction per study.

Everything that can fail (reading, geometry checks, previews) happens before anything is
written; then store files and catalog rows are added together, and a failure in either
takes back both. Re-importing the same bytes into the same project adds nothing.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.config import Settings
from portal.db.models import Label as LabelRow
from portal.db.models import Project, Segmentation, Study, Volume
from portal.db.session import Database
from portal.imaging.dicom_seg import read_dicom_seg
from portal.imaging.errors import ImagingError
from portal.imaging.label_tables import find_label_table
from portal.imaging.labels import Label, default_label_table, labels_to_rgba
from portal.imaging.nifti import nifti_volume_count
from portal.imaging.preview import (
    build_preview,
    label_surfaces,
    mosaic_png,
    thumbnail_png,
    vti_bytes,
)
from portal.imaging.resample import grid_difference, resample_labels
from portal.imaging.slices import canonical_grid
from portal.imaging.values import units_of
from portal.imaging.volume import Volume as ImageVolume
from portal.imaging.volume import check_same_grid
from portal.imaging.windowing import Window
from portal.services import audit
from portal.services.catalog import ensure_project
from portal.services.discovery import StudySource, discover, volume_kind, volume_stem
from portal.services.originals import SourceHeader, read_image
from portal.services.previews import gzip_bytes, values_of
from portal.services.review import ensure_items
from portal.services.segmentations import read_label_file
from portal.services.store import StoreTransaction, combined_hash, file_sha256

log = logging.getLogger(__name__)


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
    # `PORTAL_PACS_SOURCES`, for jobs that fetch their studies from an archive first.
    pacs_sources: str = ""

    @classmethod
    def of(cls, settings: Settings, *, resample_labels: bool = False) -> ImportSettings:
        return cls(
            store_dir=settings.store_dir,
            preview_dir=settings.preview_dir,
            preview_max_dim=settings.preview_max_dim,
            max_voxels=settings.max_voxels,
            max_archive_bytes=settings.max_archive_mb * 1024**2,
            resample_labels=resample_labels,
            pacs_sources=settings.pacs_sources,
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


def _already_imported(session: Session, project_name: str, source_hash: str) -> bool:
    stmt = (
        select(Study.id)
        .join(Project)
        .where(Project.name == project_name, Study.source_hash == source_hash)
    )
    return session.scalar(stmt) is not None


def _preview_files(
    volume: ImageVolume,
    header: SourceHeader,
    modality: str,
    labels: np.ndarray | None,
    table: list[Label],
    max_dim: int,
    value_range: tuple[float | None, float | None],
) -> tuple[dict[str, bytes], Window]:
    """The browser payloads of a study (gzip .vti volumes, thumbnail, surfaces, metadata)
    and the window the grey levels were made with; `value_range` is the whole volume's."""
    preview = build_preview(volume, labels, max_dim=max_dim)
    source = canonical_grid(volume.shape, volume.affine_ras)
    meta: dict[str, Any] = {
        "shape": list(preview.shape),
        "spacing_mm": list(preview.spacing_mm),
        "origin_mm": list(preview.origin_mm),
        "step": list(preview.step),
        "rgb": preview.is_rgb,
        "window": [preview.window.low, preview.window.high],
        "labels": [
            {"value": lab.value, "name": lab.name, "color": list(lab.color)} for lab in table
        ],
        "modality": modality,
        "units": units_of(modality),
        # The full-resolution grid the slices/ routes cut from.
        "source_shape": list(source.shape),
        "source_spacing_mm": list(source.spacing_mm),
    }
    files = {
        "image.vti.gz": _gzip(vti_bytes(preview.image_u8, preview.spacing_mm, preview.origin_mm)),
        "thumb.png": thumbnail_png(preview, table or None),
        "mosaic.png": mosaic_png(preview, table or None),
    }
    if not preview.is_rgb:
        value_min, value_max = value_range
        values = values_of(preview, (value_min or 0.0, value_max or 0.0), header)
        files["values.vti.gz"] = _gzip(
            vti_bytes(values.values, preview.spacing_mm, preview.origin_mm)
        )
        meta.update(values.meta(modality, header.frame_of_reference))
    files["meta.json"] = json.dumps(meta).encode()
    if preview.labels is not None:
        rgba = labels_to_rgba(preview.labels, table)
        files["labels.vti.gz"] = _gzip(vti_bytes(rgba, preview.spacing_mm, preview.origin_mm))
        files["surfaces.json"] = json.dumps(label_surfaces(preview, table)).encode()
    return files, preview.window


def label_counts(labels: np.ndarray) -> dict[int, int]:
    """Voxels per label value (0, the background, left out), on the full label map."""
    counts = np.bincount(labels.ravel())
    return {int(v): int(c) for v, c in enumerate(counts) if v and c}


def _voxel_mm3(volume: ImageVolume) -> float:
    return float(abs(np.linalg.det(volume.affine_ras[:3, :3])))


def _gzip(data: bytes) -> bytes:
    # Level 6 once at import; mtime=0 keeps the bytes reproducible.
    return gzip_bytes(data)


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
    labels, label_affine, table = read_label_file(path, settings.max_voxels)
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


def full_label_table(
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
        volume, header = read_image(source, settings.max_voxels)
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
    table = full_label_table(label_map.table if label_map else [], counts, source.label_names)
    modality = (source.modality or volume.modality or "OT").upper()[:16]
    value_min, value_max = _value_range(volume)
    previews, window = _preview_files(
        volume,
        header,
        modality,
        labels,
        table,
        settings.preview_max_dim,
        (value_min, value_max),
    )
    notes = [*volume.notes, *(label_map.notes if label_map else [])]
    volume_count = nifti_volume_count(source.image_paths[0]) if source.kind == "nifti" else 1
    if volume_count > 1:
        notes.append(
            f"4-D: {volume_count} volumes; the first is shown, the others one by one in the pane"
        )
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
                patient_name=header.patient_name[:255],
                modality=modality,
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
            ensure_items(session, study)
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
