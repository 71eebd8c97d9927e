"""Add a segmentation to an existing study: a reader's edit or a second model's output.

Unlike a corrected upload (`corrections`, which makes a new version of the study), the
label map joins the SAME study beside the ones it has, with its own review item, so
readers can choose which one is overlaid and multi-read Dice can compare them.

Everything that can fail (size, format, grid, label values, previews) is checked before
anything is written; then the file goes into the store and the rows into the catalog in
one transaction, and a failure of either takes back both (no row, no orphan file).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from portal.db.models import Label as LabelRow
from portal.db.models import Segmentation, Study
from portal.imaging.dicom_seg import is_dicom_seg, read_dicom_seg
from portal.imaging.errors import ImagingError
from portal.imaging.labels import Label
from portal.imaging.volume import check_same_grid
from portal.services.auth import Principal
from portal.services.catalog import open_study
from portal.services.discovery import volume_stem
from portal.services.errors import Conflict, InvalidInput, PermissionDenied
from portal.services.importer import full_label_table, label_counts
from portal.services.previews import segmentation_preview_bytes
from portal.services.review import READERS, audit_study, ensure_items, role_in
from portal.services.segmentations import read_label_file
from portal.services.store import (
    StoreTransaction,
    preview_file,
    segmentation_preview_file,
    write_atomic,
)

log = logging.getLogger(__name__)

#: File names a label map may be sent as (a detached ``.nhdr`` needs its data file too).
SUFFIXES = (".nii.gz", ".nii", ".seg.nrrd", ".nrrd", ".mgz", ".mgh", ".dcm")
MAX_NAME = 255


@dataclass
class _Checked:
    labels: np.ndarray  # on the study's voxel grid, (i, j, k)
    table: list[Label]
    counts: dict[int, int]


def check_may_add(session: Session, principal: Principal, study_id: int) -> Study:
    """The study, if `principal` may add a segmentation to it (a reader of its project).

    Raises
    ------
    NotFound
        If the study is not visible to `principal`.
    PermissionDenied
        For viewers.
    Conflict
        If the study has a newer version (add to that one).
    """
    study = open_study(session, principal, study_id, "segmentation:add")
    if role_in(session, principal, study) not in READERS:
        raise PermissionDenied("viewers cannot add segmentations")
    if study.superseded_at is not None:
        raise Conflict(f"study {study.id} has a newer version: add the segmentation to that one")
    return study


def _file_name(filename: str) -> str:
    """The upload's plain file name (no folders), checked for a label map suffix."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or name.startswith("."):
        raise InvalidInput("send the label map with its file name (e.g. liver.nii.gz)")
    if not name.lower().endswith(SUFFIXES):
        raise InvalidInput(
            f"{name}: not a label map file; send NIfTI (.nii, .nii.gz), NRRD (.nrrd, "
            ".seg.nrrd), MGH (.mgz, .mgh) or DICOM SEG (.dcm)"
        )
    return name


def _segmentation_name(name: str, file_name: str, study: Study) -> str:
    text = " ".join((name or "").split()) or volume_stem(Path(file_name))
    if len(text) > MAX_NAME:
        raise InvalidInput(f"the name is {len(text)} characters long; at most {MAX_NAME}")
    if any(seg.name == text for seg in study.segmentations):
        raise InvalidInput(f"study {study.id} already has a segmentation named {text!r}")
    return text


def _read_on_grid(path: Path, study: Study, max_voxels: int) -> tuple[np.ndarray, list[Label]]:
    """The label map on the study's grid and its own label table (empty if none).

    Raises ImagingError naming `path` if it cannot be read or lies on another grid:
    a label map is never resampled here, a different grid is usually the wrong file.
    """
    affine = np.asarray(study.affine_ras, dtype=float)
    if path.name.lower().endswith(".dcm"):
        if not is_dicom_seg(path):
            raise ImagingError(path, "not a DICOM Segmentation (SEG) object")
        labels, table, _notes = read_dicom_seg(path, affine, study.shape, max_voxels=max_voxels)
        return labels.astype(np.uint16), table
    labels, label_affine, table = read_label_file(path, max_voxels)
    check_same_grid(affine, study.shape, label_affine, labels.shape, path=path)
    return labels, table


def _check(path: Path, study: Study, max_voxels: int) -> _Checked:
    try:
        labels, file_table = _read_on_grid(path, study, max_voxels)
    except ImagingError as exc:
        raise InvalidInput(f"{path.name}: {exc.reason}") from exc
    except MemoryError as exc:
        raise InvalidInput(f"{path.name}: too large to read") from exc
    counts = label_counts(labels)
    return _Checked(labels, full_label_table(file_table, counts, {}), counts)


def _voxel_ml(study: Study) -> float:
    affine = np.asarray(study.affine_ras, dtype=float)
    return float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0


def _rows(checked: _Checked, study: Study) -> list[LabelRow]:
    ml = _voxel_ml(study)
    return [
        LabelRow(
            value=lab.value,
            name=lab.name,
            color="#{:02x}{:02x}{:02x}".format(*lab.color),
            voxel_count=checked.counts.get(lab.value, 0),
            volume_ml=round(checked.counts.get(lab.value, 0) * ml, 3),
        )
        for lab in checked.table
    ]


class _Previews:
    """Writes a new segmentation's preview files; `undo` takes them back (and meta.json)."""

    def __init__(self, preview_dir: Path, study: Study) -> None:
        self.preview_dir = preview_dir
        self.study = study
        self.written: list[Path] = []
        self.old_meta: bytes | None = None

    def write(self, segmentation: Segmentation, files: dict[str, bytes], first: bool) -> None:
        uid = self.study.uid
        for name, data in files.items():
            # The study's first segmentation shows through its own labels.vti and
            # surfaces.json, as if it had been imported with the study.
            path = (
                preview_file(self.preview_dir, uid, name)
                if first
                else segmentation_preview_file(self.preview_dir, uid, segmentation.id, name)
            )
            write_atomic(path, data)
            self.written.append(path)
        if first:
            meta_path = preview_file(self.preview_dir, uid, "meta.json")
            self.old_meta = meta_path.read_bytes()
            meta = json.loads(self.old_meta)
            meta["labels"] = [
                {"value": lab.value, "name": lab.name, "color": list(_rgb(lab.color))}
                for lab in segmentation.labels
            ]
            write_atomic(meta_path, json.dumps(meta).encode())

    def undo(self) -> None:
        for path in self.written:
            path.unlink(missing_ok=True)
        if self.old_meta is not None:
            write_atomic(preview_file(self.preview_dir, self.study.uid, "meta.json"), self.old_meta)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    text = hex_colour.lstrip("#")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def add_segmentation(
    session: Session,
    principal: Principal,
    store_dir: Path,
    preview_dir: Path,
    study_id: int,
    filename: str,
    data: bytes,
    name: str,
    *,
    max_bytes: int,
    max_voxels: int,
) -> Segmentation:
    """Add the label map `data` (sent as `filename`) to a study as a new segmentation.

    The label map must lie on the study's voxel grid (within 1e-3 mm) and hold whole
    numbers 0-65535; its label table is the file's own (``.seg.nrrd``, DICOM SEG) or
    generated for the values present. Label voxel counts and volumes (ml) are counted
    on the full map. Its review item and previews (``labels.vti``, ``surfaces.json``)
    are made at once; the session is committed here, inside the store transaction, so
    a failed commit takes the stored file back too.

    Parameters
    ----------
    filename
        The uploaded file's name: its suffix says the format (see `SUFFIXES`).
    name
        The segmentation's name in the pane's chooser; empty: the file name's stem.
    max_bytes, max_voxels
        Largest file, and largest label map (from its header, before any allocation).

    Returns
    -------
    Segmentation
        The new row, with its labels.

    Raises
    ------
    NotFound
        If the study is not visible to `principal`.
    PermissionDenied
        For viewers.
    Conflict
        If the study has a newer version or already holds exactly these bytes.
    InvalidInput
        Naming the file and the reason: size, format, grid, values, name.
    """
    study = check_may_add(session, principal, study_id)
    file_name = _file_name(filename)
    if len(data) > max_bytes:
        raise InvalidInput(f"{file_name}: {len(data)} bytes is over the limit of {max_bytes}")
    if not data:
        raise InvalidInput(f"{file_name}: the file is empty")
    seg_name = _segmentation_name(name, file_name, study)
    sha256 = hashlib.sha256(data).hexdigest()
    for seg in study.segmentations:
        if seg.content_hash == sha256:
            raise Conflict(
                f"{file_name}: study {study.id} already has this label map "
                f"(segmentation {seg.id}, {seg.name!r})"
            )
    first = not study.segmentations
    with tempfile.TemporaryDirectory(prefix="portal-seg-") as folder:
        path = Path(folder) / file_name
        path.write_bytes(data)
        checked = _check(path, study, max_voxels)
        # Built before anything is written: the slow part, outside the write transaction.
        table = checked.table
        files = segmentation_preview_bytes(study, checked.labels, table, preview_dir)
        previews = _Previews(preview_dir, study)
        with StoreTransaction(store_dir, preview_dir) as store:
            try:
                segmentation = Segmentation(
                    name=seg_name,
                    file=store.add_source(path, sha256),
                    content_hash=sha256,
                    labels=_rows(checked, study),
                )
                study.segmentations.append(segmentation)
                study.segmentation_count = len(study.segmentations)
                session.flush()
                ensure_items(session, study)
                audit_study(
                    session,
                    principal,
                    study,
                    "segmentation.add",
                    f"segmentation={segmentation.id} labels={len(table)}",
                )
                previews.write(segmentation, files, first)
                session.commit()
            except BaseException:
                session.rollback()
                previews.undo()
                raise
    log.info("segmentation %s added to study %s", segmentation.id, study.id)
    return segmentation


def segmentation_json(segmentation: Segmentation) -> dict[str, object]:
    """``{id, study_id, name, labels: [{value, name, color, voxel_count, volume_ml}]}``."""
    return {
        "id": segmentation.id,
        "study_id": segmentation.study_id,
        "name": segmentation.name,
        "labels": [
            {
                "value": lab.value,
                "name": lab.name,
                "color": lab.color,
                "voxel_count": lab.voxel_count,
                "volume_ml": lab.volume_ml,
            }
            for lab in segmentation.labels
        ],
    }
