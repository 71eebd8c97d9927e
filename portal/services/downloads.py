"""Files out of the portal: a study's stored originals as a streamed zip, and a
segmentation as NIfTI or NRRD on its study's grid. Every download is access-checked
and audited."""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
from sqlalchemy.orm import Session

from portal.db.models import Segmentation
from portal.services import audit
from portal.services.auth import Principal
from portal.services.catalog import get_study
from portal.services.errors import InvalidInput, NotFound
from portal.services.segmentations import label_map
from portal.services.store import source_suffix

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, fallback: str = "study") -> str:
    """A file name from free text: letters, digits, `.`, `-`, `_` only, never hidden."""
    name = _UNSAFE.sub("_", text).strip("._")[:80]
    return name or fallback


def study_files(
    session: Session, principal: Principal, study_id: int, store_dir: Path
) -> tuple[str, list[tuple[str, Path]]]:
    """The zip's name and its (name in zip, stored file) entries for one study.

    Images go under `image/` in their stored order (DICOM as `IM0001.dcm`, ...), label
    maps under `segmentations/` by segmentation name. Original file names were not
    kept at import, so these names are made up; the content is byte-for-byte the
    original.
    """
    study = get_study(session, principal, study_id)
    base = safe_name(study.name)
    entries: list[tuple[str, Path]] = []
    for vol_index, volume in enumerate(study.volumes):
        folder = "image" if len(study.volumes) == 1 else f"image-{vol_index + 1}"
        for n, rel in enumerate(volume.files, start=1):
            path = store_dir / rel
            suffix = source_suffix(path) or path.suffix
            name = f"IM{n:04d}{suffix}" if len(volume.files) > 1 else f"{base}{suffix}"
            entries.append((f"{folder}/{name}", path))
    for seg in study.segmentations:
        path = store_dir / seg.file
        suffix = source_suffix(path) or path.suffix
        entries.append((f"segmentations/{safe_name(seg.name, f'seg-{seg.id}')}{suffix}", path))
    missing = [str(p.name) for _, p in entries if not p.exists()]
    if missing:
        raise NotFound(f"stored files of study {study.id} are missing: {', '.join(missing[:3])}")
    audit.record(
        session,
        principal.user_id,
        "study.download",
        f"study:{study.id}",
        f"files={len(entries)}",
        role=principal.role.value,
        study_uid=study.uid,
    )
    return f"{base}-v{study.version}.zip", entries


class _Sink(io.RawIOBase):
    """A write-only stream the zip writer fills and the generator drains."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.chunks.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


def iter_zip(entries: Iterable[tuple[str, Path]], chunk: int = 1 << 20) -> Iterator[bytes]:
    """Stream a zip of `entries` without holding a whole file (or the zip) in memory.

    Stored without compression: DICOM and `.nii.gz` gain little from deflate, and the
    CPU would bound the download speed.
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for arcname, path in entries:
            with path.open("rb") as src, zf.open(arcname, "w", force_zip64=True) as dst:
                while block := src.read(chunk):
                    dst.write(block)
                    if data := sink.drain():
                        yield data
            if data := sink.drain():
                yield data
    if data := sink.drain():
        yield data


def segmentation_file(
    session: Session, principal: Principal, segmentation_id: int, store_dir: Path, fmt: str
) -> tuple[str, bytes, str]:
    """A segmentation's labels on its study's grid as (file name, bytes, MIME type).

    `fmt` is `nifti` (`.nii.gz`, the study's RAS affine) or `nrrd` (`.nrrd`, LPS space
    directions as NRRD readers expect).
    """
    seg = session.get(Segmentation, segmentation_id)
    if seg is None:
        raise NotFound(f"segmentation {segmentation_id} not found")
    study = get_study(session, principal, seg.study_id)  # the access rule
    if fmt not in ("nifti", "nrrd"):
        raise InvalidInput("format must be nifti or nrrd")
    labels = label_map(store_dir, study, seg)
    dtype = np.uint8 if labels.max(initial=0) < 256 else np.uint16
    labels = labels.astype(dtype)
    affine = np.asarray(study.affine_ras, dtype=float)
    name = f"{safe_name(study.name)}-{safe_name(seg.name, 'labels')}"
    if fmt == "nifti":
        image = nib.Nifti1Image(labels, affine)
        image.header.set_xyzt_units("mm")
        image.set_qform(affine, code=1)
        image.set_sform(affine, code=1)
        data = gzip.compress(image.to_bytes(), compresslevel=6)
        out = (f"{name}.nii.gz", data, "application/gzip")
    else:
        out = (f"{name}.nrrd", _nrrd_bytes(labels, affine), "application/octet-stream")
    audit.record(
        session,
        principal.user_id,
        "study.download",
        f"segmentation:{seg.id}",
        f"format={fmt}",
        role=principal.role.value,
        study_uid=study.uid,
    )
    return out


def _nrrd_bytes(labels: np.ndarray, affine_ras: np.ndarray) -> bytes:
    import tempfile

    import nrrd

    lps = np.diag([-1.0, -1.0, 1.0]) @ affine_ras[:3, :]
    header = {
        "space": "left-posterior-superior",
        "space directions": lps[:, :3].T,
        "space origin": lps[:, 3],
        "encoding": "gzip",
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labels.nrrd"
        nrrd.write(str(path), labels, header)
        return path.read_bytes()
