"""Browser preview files of a study: made at import, or on first use for older studies.

All share one grid, the study's preview grid (closest-canonical RAS, strided by the
``step`` in ``meta.json``): ``image.vti`` (windowed grey levels), ``values.vti`` (the
same voxels in real units), ``labels.vti`` and ``surfaces.json`` (the first
segmentation), and ``segmentations/<id>/`` (each further segmentation). Files made on
demand are written whole under a temporary name and renamed into place, so two workers
asked at once both write whole files and one wins. Callers check access first.
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from portal.db.models import Segmentation, Study
from portal.imaging.labels import Label, default_label_table, labels_to_rgba
from portal.imaging.nifti import read_nifti
from portal.imaging.preview import Preview, build_preview, labels_on_preview_grid
from portal.imaging.slices import canonical_grid
from portal.imaging.surfaces import grid_label_surfaces
from portal.imaging.values import ValuePreview, value_preview
from portal.imaging.vti import vti_bytes
from portal.imaging.windowing import Window
from portal.services.errors import NotFound
from portal.services.originals import SourceHeader, read_stored_image
from portal.services.segmentations import label_map
from portal.services.store import preview_file, segmentation_preview_file, write_atomic

__all__ = [
    "SOURCE_KEYS",
    "gzip_bytes",
    "read_meta",
    "segmentation_entries",
    "segmentation_preview",
    "segmentation_preview_bytes",
    "segmentation_table",
    "source_grid_meta",
    "stored_step",
    "study_meta",
    "values_of",
    "volume_range",
    "volume_values",
]

log = logging.getLogger(__name__)

#: Keys ``meta.json`` holds once the values preview exists (older studies lack them).
VALUE_KEYS = ("values_dtype", "value_range", "auto_window", "default_window", "invert")
#: Keys of the full-resolution canonical grid (the one ``slices/`` routes cut from).
SOURCE_KEYS = ("source_shape", "source_spacing_mm")


def gzip_bytes(data: bytes) -> bytes:
    """Gzip level 6; mtime 0 keeps the bytes reproducible (and the ETag with them)."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def values_of(
    preview: Preview, volume_range: tuple[float, float], header: SourceHeader
) -> ValuePreview:
    """The real-unit values of `preview`; `volume_range` is (min, max) of the whole volume
    as read, which a MONOCHROME1 inversion is undone with."""
    return value_preview(preview, monochrome1_range=volume_range if header.monochrome1 else None)


def volume_range(data: np.ndarray) -> tuple[float, float]:
    """(min, max) of a whole volume as read, NaN ignored; (0, 0) when empty."""
    if data.size == 0:
        return 0.0, 0.0
    return float(np.nanmin(data)), float(np.nanmax(data))


def read_meta(preview_dir: Path, study: Study) -> dict[str, Any]:
    """The study's ``meta.json`` as stored (no keys filled in).

    Raises
    ------
    NotFound
        If the study has no preview folder.
    """
    path = preview_file(preview_dir, study.uid, "meta.json")
    if not path.exists():
        raise NotFound(f"study {study.id} has no preview")
    meta: dict[str, Any] = json.loads(path.read_text())
    return meta


def _step(meta: dict[str, Any]) -> tuple[int, int, int]:
    i, j, k = (int(n) for n in meta["step"])
    return i, j, k


def stored_step(preview_dir: Path, study: Study) -> tuple[int, int, int]:
    """The stride of the study's preview grid, as made at import (from ``meta.json``)."""
    return _step(read_meta(preview_dir, study))


def _stored_window(study: Study, meta: dict[str, Any]) -> Window | None:
    if "window" in meta:
        low, high = meta["window"]
        return Window(float(low), float(high))
    if study.window_level is not None and study.window_width is not None:
        return Window.from_level_width(study.window_level, study.window_width)
    return None


def _check_grid(study: Study, meta: dict[str, Any], preview: Preview) -> None:
    """A remade file must lie on the grid of the files made at import."""
    same = list(preview.shape) == list(meta["shape"]) and np.allclose(
        preview.origin_mm, meta["origin_mm"], atol=1e-4
    )
    if not same:
        raise RuntimeError(
            f"study {study.id}: the stored original gives preview shape {preview.shape} at "
            f"{preview.origin_mm}, meta.json says {meta['shape']} at {meta['origin_mm']}"
        )


def source_grid_meta(study: Study) -> dict[str, Any]:
    """``source_shape`` and ``source_spacing_mm``: the study's full-resolution canonical
    grid (``i, j, k`` towards R, A, S), from its stored shape and affine alone."""
    grid = canonical_grid(study.shape, np.asarray(study.affine_ras, dtype=float))
    return {"source_shape": list(grid.shape), "source_spacing_mm": list(grid.spacing_mm)}


def _fill_source_keys(study: Study, preview_dir: Path, meta: dict[str, Any]) -> None:
    """Give a ``meta.json`` written before the keys existed the full-resolution grid."""
    missing = {k: v for k, v in source_grid_meta(study).items() if k not in meta}
    if missing:
        meta.update(missing)
        write_atomic(preview_file(preview_dir, study.uid, "meta.json"), json.dumps(meta).encode())


def study_meta(study: Study, store_dir: Path, preview_dir: Path, max_voxels: int) -> dict[str, Any]:
    """The study's ``meta.json``, with ``values.vti.gz`` made first if it is missing.

    Studies imported before real-unit previews existed have neither the file nor its
    keys: the original is read back from the store, taken to the stored grid (the
    ``step`` in the old meta, whatever the preview size setting is today) and windowed
    with the stored window, and both files are written. RGB studies have no values;
    their meta gains ``modality`` and ``units`` only. Every study's meta gains
    :data:`SOURCE_KEYS` when it lacks them (see :func:`source_grid_meta`).
    """
    meta = read_meta(preview_dir, study)
    _fill_source_keys(study, preview_dir, meta)
    meta.setdefault("modality", study.modality)
    meta.setdefault("units", "HU" if study.modality.upper() == "CT" else "")
    if meta.get("rgb"):
        return meta
    values_path = preview_file(preview_dir, study.uid, "values.vti.gz")
    if values_path.exists() and all(key in meta for key in VALUE_KEYS):
        return meta
    volume, header = read_stored_image(study, store_dir, max_voxels)
    preview = build_preview(volume, step=_step(meta), window=_stored_window(study, meta))
    _check_grid(study, meta, preview)
    values = values_of(preview, volume_range(volume.data), header)
    write_atomic(
        values_path, gzip_bytes(vti_bytes(values.values, preview.spacing_mm, preview.origin_mm))
    )
    meta.update(values.meta(study.modality, header.frame_of_reference))
    # The values file first: a meta.json with value keys always has its file beside it.
    write_atomic(preview_file(preview_dir, study.uid, "meta.json"), json.dumps(meta).encode())
    log.info("made the values preview of study %s on demand", study.id)
    return meta


def volume_values(
    study: Study, store_dir: Path, preview_dir: Path, index: int, max_voxels: int
) -> Path:
    """The gzip real-unit ``.vti`` of volume `index` of a study, made on first use.

    Volume 0 is ``values.vti.gz``. Others (4-D NIfTI) are read from the stored original,
    on the stored grid, and kept beside the study's windowed volumes.

    Raises
    ------
    NotFound
        For an RGB study, or one without volume `index`.
    """
    meta = study_meta(study, store_dir, preview_dir, max_voxels)
    if meta.get("rgb"):
        raise NotFound(f"study {study.id} is a colour image: it has no values preview")
    if index == 0:
        return preview_file(preview_dir, study.uid, "values.vti.gz")
    target = preview_dir / study.uid / "volumes" / f"{index}.values.vti.gz"
    if target.exists():
        return target
    if study.volumes[0].format != "nifti":  # only NIfTI sources are stored as 4-D
        raise NotFound(f"study {study.id} has no volume {index}")
    source = store_dir / study.volumes[0].files[0]
    volume = read_nifti(source, volume_index=index, max_voxels=max_voxels)
    preview = build_preview(volume, step=_step(meta), window=_stored_window(study, meta))
    values = values_of(preview, volume_range(volume.data), SourceHeader())
    write_atomic(
        target, gzip_bytes(vti_bytes(values.values, preview.spacing_mm, preview.origin_mm))
    )
    return target


def segmentation_table(segmentation: Segmentation, labels: np.ndarray) -> list[Label]:
    """The segmentation's stored label table (names, colours), or palette colours of the
    values in `labels` (palette colours go by value, so any part of the map agrees)."""
    if segmentation.labels:
        return [
            Label(lab.value, lab.name, _rgb(lab.color))
            for lab in segmentation.labels
            if 1 <= lab.value <= 65535
        ]
    return default_label_table(np.unique(labels))


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    text = hex_colour.lstrip("#")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def segmentation_entries(study: Study) -> list[dict[str, Any]]:
    """``[{id, name, labels: [{value, name, color, volume_ml}]}]`` of a study's
    segmentations, oldest first: the first is the one ``labels.vti`` shows."""
    return [
        {
            "id": seg.id,
            "name": seg.name,
            "labels": [
                {
                    "value": lab.value,
                    "name": lab.name,
                    "color": lab.color,
                    "volume_ml": lab.volume_ml,
                }
                for lab in seg.labels
            ],
        }
        for seg in study.segmentations
    ]


def segmentation_preview(
    study: Study,
    segmentation: Segmentation,
    store_dir: Path,
    preview_dir: Path,
    name: str,
) -> Path:
    """``labels.vti.gz`` or ``surfaces.json`` of one segmentation of `study`.

    The first segmentation's are the study's own files, made at import. Others are made
    on first use from the stored label map on the study's preview grid, coloured by the
    segmentation's own label table exactly as ``labels.vti`` (RGBA, alpha 0 off labels).

    Raises
    ------
    NotFound
        If the segmentation belongs to another study.
    """
    if segmentation.study_id != study.id:
        raise NotFound(f"study {study.id} has no segmentation {segmentation.id}")
    target = segmentation_preview_file(preview_dir, study.uid, segmentation.id, name)
    first = study.segmentations[0].id == segmentation.id
    if first:
        own = preview_file(preview_dir, study.uid, name)
        if own.exists():
            return own
    if target.exists():
        return target
    labels = label_map(store_dir, study, segmentation)
    files = segmentation_preview_bytes(
        study, labels, segmentation_table(segmentation, labels), preview_dir
    )
    for file_name, data in files.items():
        write_atomic(target.parent / file_name, data)
    return target


def segmentation_preview_bytes(
    study: Study, labels: np.ndarray, table: list[Label] | None, preview_dir: Path
) -> dict[str, bytes]:
    """``{"labels.vti.gz": ..., "surfaces.json": ...}`` of a label map of `study`.

    Parameters
    ----------
    labels
        The full-resolution label map on the study's voxel grid, (i, j, k) order.
    table
        The label table (names, colours); None gives palette colours to the values present.

    Raises
    ------
    NotFound
        If the study has no preview (``meta.json``).
    """
    meta = read_meta(preview_dir, study)
    grid = labels_on_preview_grid(labels, np.asarray(study.affine_ras, dtype=float), _step(meta))
    if list(grid.shape) != list(meta["shape"]):
        raise RuntimeError(
            f"study {study.id}: label preview shape {grid.shape}, meta.json says {meta['shape']}"
        )
    if table is None:
        table = default_label_table(np.unique(grid))
    spacing = tuple(float(v) for v in meta["spacing_mm"])
    origin = tuple(float(v) for v in meta["origin_mm"])
    return {
        "labels.vti.gz": gzip_bytes(vti_bytes(labels_to_rgba(grid, table), spacing, origin)),
        "surfaces.json": json.dumps(grid_label_surfaces(grid, spacing, origin, table)).encode(),
    }
