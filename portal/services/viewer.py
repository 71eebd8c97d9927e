"""What a viewer pane needs about a study: its detail, preview metadata and label surfaces."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from portal.db.models import Segmentation
from portal.imaging.nifti import read_nifti
from portal.imaging.preview import build_preview
from portal.imaging.values import units_of
from portal.imaging.vti import vti_bytes
from portal.imaging.windowing import Window
from portal.services import previews
from portal.services.auth import Principal
from portal.services.catalog import open_study, study_detail
from portal.services.errors import NotFound
from portal.services.segmentations import MAX_VOXELS
from portal.services.store import preview_file


def pane_data(
    session: Session,
    principal: Principal,
    preview_dir: Path,
    study_id: int,
    *,
    store_dir: Path | None = None,
    max_voxels: int = MAX_VOXELS,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(detail, preview meta) of a study `principal` may see.

    The meta is ``meta.json`` (grid, window, label table) with the keys of the
    real-unit preview ``values.vti`` (``modality``, ``units``, ``value_range``,
    ``auto_window``, ``default_window``, ``invert``, ``frame_of_reference``,
    ``values_dtype``; see :mod:`portal.services.previews`), the full-resolution canonical
    grid ``source_shape`` and ``source_spacing_mm`` (what the ``slices/`` routes cut
    from; filled in for studies imported before the keys existed) and ``segmentations``
    (``[{id, name, labels: [{value, name, color, volume_ml}]}]``, the first being the
    one ``labels.vti`` shows). Given `store_dir`, a study imported before
    ``values.vti`` existed gets it now (read back from its original); without it such
    a study's meta lacks the value keys.

    Raises
    ------
    NotFound
        If the study is not visible to `principal`.
    """
    study = open_study(session, principal, study_id, "pane")
    if store_dir is not None:
        meta = previews.study_meta(study, store_dir, preview_dir, max_voxels)
    else:
        meta = json.loads(preview_file(preview_dir, study.uid, "meta.json").read_text())
        meta.setdefault("modality", study.modality)
        meta.setdefault("units", units_of(study.modality))
        for key, value in previews.source_grid_meta(study).items():
            meta.setdefault(key, value)
    meta["segmentations"] = previews.segmentation_entries(study)
    return study_detail(study), meta


def values_preview(
    session: Session,
    principal: Principal,
    store_dir: Path,
    preview_dir: Path,
    study_id: int,
    index: int = 0,
    *,
    max_voxels: int = MAX_VOXELS,
) -> Path:
    """The gzip real-unit ``.vti`` of volume `index` (0 for 3-D studies), made on first use.

    Raises
    ------
    NotFound
        If the study is not visible to `principal`, is a colour image, or has no
        volume `index`.
    """
    via = "preview:values.vti" if index == 0 else f"volume:{index}:values"
    study = open_study(session, principal, study_id, via)
    if not 0 <= index < study.volume_count:
        raise NotFound(f"study {study_id} has no volume {index}")
    return previews.volume_values(study, store_dir, preview_dir, index, max_voxels)


def segmentation_preview(
    session: Session,
    principal: Principal,
    store_dir: Path,
    preview_dir: Path,
    study_id: int,
    segmentation_id: int,
    name: str,
) -> Path:
    """``labels.vti.gz`` or ``surfaces.json`` of one segmentation of a visible study.

    Raises
    ------
    NotFound
        If the study is not visible to `principal`, or the segmentation is not one of
        its own (a segmentation of another study answers like a missing one).
    """
    study = open_study(session, principal, study_id, f"segmentation:{segmentation_id}:{name}")
    segmentation = session.get(Segmentation, segmentation_id)
    if segmentation is None or segmentation.study_id != study.id:
        raise NotFound(f"study {study_id} has no segmentation {segmentation_id}")
    return previews.segmentation_preview(study, segmentation, store_dir, preview_dir, name)


def label_surfaces(
    session: Session, principal: Principal, preview_dir: Path, study_id: int
) -> list[dict[str, Any]]:
    """The precomputed label surfaces (dash-vtk mesh states) of a visible study."""
    study = open_study(session, principal, study_id, "surfaces")
    path = preview_file(preview_dir, study.uid, "surfaces.json")
    if not path.exists():
        return []
    surfaces: list[dict[str, Any]] = json.loads(path.read_text())
    return surfaces


def volume_preview(
    session: Session,
    principal: Principal,
    store_dir: Path,
    preview_dir: Path,
    study_id: int,
    index: int,
    *,
    max_dim: int,
    max_voxels: int,
) -> Path:
    """The gzip `.vti` preview of 3-D volume `index` of a 4-D study, made on first use.

    Volume 0 is the preview made at import. Others are read from the original file in
    the store the first time a reviewer asks for them, windowed like volume 0 (so a time
    series keeps its brightness from frame to frame) on exactly the same grid, and kept
    beside the study's other previews.

    Raises
    ------
    NotFound
        If the study is not visible to `principal`, or has no volume `index`.
    """
    study = open_study(session, principal, study_id, f"volume:{index}")
    if not 0 <= index < study.volume_count:
        raise NotFound(f"study {study_id} has no volume {index}")
    if index == 0:
        return preview_file(preview_dir, study.uid, "image.vti.gz")
    target = preview_dir / study.uid / "volumes" / f"{index}.vti.gz"
    if target.exists():
        return target
    if study.volumes[0].format != "nifti":  # only NIfTI sources are stored as 4-D
        raise NotFound(f"study {study_id} has no volume {index}")
    source = study.volumes[0].files[0]
    volume = read_nifti(store_dir / source, volume_index=index, max_voxels=max_voxels)
    window = None
    if study.window_level is not None and study.window_width is not None:
        window = Window.from_level_width(study.window_level, study.window_width)
    # On the stored grid of volume 0 (and of values.vti), whatever max_dim is today.
    step = previews.stored_step(preview_dir, study)
    preview = build_preview(volume, max_dim=max_dim, window=window, step=step)
    payload = gzip.compress(
        vti_bytes(preview.image_u8, preview.spacing_mm, preview.origin_mm), 6, mtime=0
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: two workers asked at once both write whole files, one wins.
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(handle, "wb") as out:
        out.write(payload)
    os.replace(temporary, target)
    return target


def slice_index(meta: dict[str, Any], z_mm: float) -> int:
    """The axial slice `k` of a study's preview nearest RAS world `z_mm`, clamped to it.

    The preview grid is closest-canonical RAS (`k` towards Superior) with `origin_mm` and
    `spacing_mm` from its `meta.json`, so world z = origin z + k * spacing z. A z outside
    the study gives its first or last slice.
    """
    nk = int(meta["shape"][2])
    spacing = float(meta["spacing_mm"][2]) or 1.0
    k = round((z_mm - float(meta["origin_mm"][2])) / spacing)
    return min(max(k, 0), max(nk - 1, 0))
