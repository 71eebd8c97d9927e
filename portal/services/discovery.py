"""Find what to import in files and folders: images, their segmentations, DICOM series.

Only headers are read here; :mod:`portal.services.importer` reads the voxels. An image
pairs with a sibling label map by name (`case` <- `case-label`, `case_seg`, `case.seg.nrrd`,
...), a DICOM SEG with the series it references; ZIP archives are unpacked safely first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from portal.imaging.archive import extract_zip
from portal.imaging.demo import DemoStudy
from portal.imaging.dicom import DicomSeries, find_dicom_series
from portal.imaging.dicom_seg import is_dicom_seg, referenced_instance_uids, referenced_series_uid
from portal.imaging.errors import ImagingError
from portal.imaging.nrrd import nrrd_data_file

NOT_AN_IMAGE = "not a NIfTI, MGH/MGZ, NRRD or DICOM image file"
LABEL_PATTERN = re.compile(r"^(?P<stem>.+?)[-_](label|labels|seg|segmentation)$", re.IGNORECASE)


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

    @classmethod
    def of_demo(cls, demo: DemoStudy) -> StudySource:
        """The import source of a demo study (files the demo builder wrote)."""
        return cls(
            name=demo.name,
            image_paths=tuple(demo.image_paths),
            kind=demo.kind,
            label_path=demo.label_path,
            label_names=dict(demo.label_names),
            modality=demo.modality,
        )


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
