"""Browser payloads: a downsampled, windowed, canonical copy of a study.

A :class:`Preview` is what the viewer shows: uint8 grey levels and uint16
labels on one shared grid in closest-canonical RAS voxel order (``i`` towards
the subject's Right, ``j`` Anterior, ``k`` Superior). Obliquity is dropped:
the grid is drawn axis-aligned with the preview's origin and spacing, which is
how the viewer (vtk.js image slices) can display it.

Display convention of :func:`thumbnail_png` (radiological, as on a PACS
workstation): an axial slice seen from the feet, so the subject's Right is on
the image's LEFT and Anterior at the TOP.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from portal.imaging.labels import Label, default_label_table, labels_to_rgba
from portal.imaging.surfaces import label_surfaces
from portal.imaging.volume import Volume, reorient_labels_like, to_closest_canonical
from portal.imaging.vti import vti_bytes
from portal.imaging.windowing import Window, apply_window, default_window

__all__ = [
    "Preview",
    "build_preview",
    "label_surfaces",
    "labels_on_preview_grid",
    "preview_step",
    "mosaic_png",
    "mosaic_slice_indices",
    "overlay_mosaic_png",
    "overlay_slice_indices",
    "thumbnail_png",
    "thumbnail_slice_index",
    "vti_bytes",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preview:
    """A study ready for the browser.

    Parameters
    ----------
    image_u8 : numpy.ndarray
        3-D uint8 grey levels (window applied), canonical RAS ``(i, j, k)`` order;
        ``(i, j, k, 3)`` RGB for colour images (shown as stored, no window).
    labels : numpy.ndarray or None
        uint16 label values on exactly the same grid, or None.
    spacing_mm : tuple of float
        Voxel size of the preview along ``i, j, k`` (source spacing times step).
    origin_mm : tuple of float
        RAS position of preview voxel ``(0, 0, 0)``, in mm.
    source_shape : tuple of int
        Shape of the canonical full-resolution volume.
    step : tuple of int
        Stride taken along ``i, j, k`` from the canonical volume.
    window : Window
        Value range of the source mapped to 0..255.
    values : numpy.ndarray or None
        The very voxels of ``image_u8`` before the window, in the source's own
        units (rescale applied: HU for CT), source dtype; None for RGB.
    """

    image_u8: np.ndarray
    labels: np.ndarray | None
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    source_shape: tuple[int, int, int]
    step: tuple[int, int, int]
    window: Window = Window(0.0, 255.0)
    values: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxel count of the preview along ``i, j, k``."""
        ni, nj, nk = self.image_u8.shape[:3]
        return int(ni), int(nj), int(nk)

    @property
    def is_rgb(self) -> bool:
        """True when ``image_u8`` holds RGB colour."""
        return self.image_u8.ndim == 4


def preview_step(shape: Sequence[int], max_dim: int) -> tuple[int, int, int]:
    """Stride along ``i, j, k`` of a canonical volume of `shape` so no axis exceeds `max_dim`.

    The smallest integer per axis that achieves it.

    Examples
    --------
    >>> preview_step((197, 233, 189), 96)
    (3, 3, 2)
    """
    if max_dim < 1:
        raise ValueError(f'Argument "max_dim" must be positive, got {max_dim}.')
    si, sj, sk = (max(1, math.ceil(int(n) / max_dim)) for n in shape[:3])
    return si, sj, sk


def labels_on_preview_grid(
    labels: np.ndarray, affine_ras: np.ndarray, step: Sequence[int]
) -> np.ndarray:
    """A label map on its image's grid taken to that image's preview grid.

    Reoriented like :func:`~portal.imaging.volume.to_closest_canonical` reorients the
    image (from the image's own affine) and strided by `step`, exactly as
    :func:`build_preview` does, so several segmentations of one study share its grid.

    Returns
    -------
    numpy.ndarray
        uint16, contiguous, canonical RAS ``(i, j, k)``.
    """
    si, sj, sk = (int(n) for n in step)
    reoriented = reorient_labels_like(labels, affine_ras)
    return np.ascontiguousarray(reoriented[::si, ::sj, ::sk], dtype=np.uint16)


def build_preview(
    volume: Volume,
    labels: np.ndarray | None = None,
    *,
    max_dim: int = 192,
    window: Window | None = None,
    step: Sequence[int] | None = None,
) -> Preview:
    """Reorient to closest canonical, downsample and window a volume.

    Parameters
    ----------
    volume : Volume
        The image.
    labels : numpy.ndarray, optional
        Integer label map on the image grid (same shape, same voxel order).
    max_dim : int
        No preview axis is longer. Each axis is strided by the smallest
        integer that achieves it; labels take the very same voxels (nearest
        neighbour), so image and labels share one grid exactly.
    window : Window, optional
        Defaults to :func:`~portal.imaging.windowing.default_window`
        (level 40 / width 400 HU for CT, 0.5-99.5 percentiles of non-zero
        voxels otherwise).
    step : sequence of int, optional
        The stride along canonical ``i, j, k`` instead of the one `max_dim` gives: to
        remake a file on the grid of a preview made earlier (under another setting).

    Returns
    -------
    Preview
    """
    if max_dim < 1:
        raise ValueError(f'Argument "max_dim" must be positive, got {max_dim}.')
    if step is not None and (len(step) != 3 or min(int(n) for n in step) < 1):
        raise ValueError(f'Argument "step" must be three positive integers, got {step!r}.')
    if labels is not None and labels.shape != volume.shape:
        raise ValueError(
            f'Argument "labels" must have the image shape {volume.shape}, got {labels.shape}.'
        )
    canonical = to_closest_canonical(volume)
    si, sj, sk = preview_step(canonical.shape, max_dim) if step is None else (int(n) for n in step)
    image = canonical.data[::si, ::sj, ::sk]
    values = None
    if canonical.is_rgb:
        # Colour is shown as stored: a window over three channels would shift the hues.
        window = Window(0.0, 255.0)
        image_u8 = np.ascontiguousarray(image)
    else:
        window = window or default_window(image, canonical.modality)
        image_u8 = np.ascontiguousarray(apply_window(image, window))
        values = image
    preview_labels = None
    if labels is not None:
        preview_labels = labels_on_preview_grid(labels, volume.affine_ras, (si, sj, sk))
    spacing = canonical.spacing_mm
    origin = canonical.affine_ras[:3, 3]
    return Preview(
        image_u8=image_u8,
        labels=preview_labels,
        spacing_mm=(spacing[0] * si, spacing[1] * sj, spacing[2] * sk),
        origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
        source_shape=canonical.shape,
        step=(si, sj, sk),
        window=window,
        values=values,
    )


def thumbnail_slice_index(preview: Preview) -> int:
    """Axial slice ``k`` shown by :func:`thumbnail_png`.

    The slice with the most labelled voxels when there are labels (so the
    thumbnail shows the segmentation), else the middle slice.
    """
    if preview.labels is not None:
        counts = np.count_nonzero(preview.labels, axis=(0, 1))
        if counts.any():
            return int(np.argmax(counts))
    return preview.shape[2] // 2


def _radiological(slice_ij: np.ndarray) -> np.ndarray:
    """``(i, j, ...)`` RAS slice -> ``(row, column, ...)`` picture.

    Row 0 is the largest ``j`` (Anterior at the top); column 0 is the largest
    ``i`` (subject's Right on the viewer's left).
    """
    return np.swapaxes(slice_ij[::-1, ::-1], 0, 1)


def thumbnail_png(preview: Preview, table: Sequence[Label] | None, *, size: int = 128) -> bytes:
    """A square PNG of one axial slice in radiological convention.

    Parameters
    ----------
    preview : Preview
        From :func:`build_preview`.
    table : sequence of Label, optional
        Label colours; defaults to :func:`~portal.imaging.labels.default_label_table`.
    size : int
        Width and height in pixels. The slice keeps its physical aspect ratio
        and is letterboxed on black.

    Returns
    -------
    bytes
        PNG, RGB, ``size`` x ``size``.
    """
    if size < 1:
        raise ValueError(f'Argument "size" must be positive, got {size}.')
    return _png(_slice_tile(preview, table, thumbnail_slice_index(preview), size))


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _slice_tile(preview: Preview, table: Sequence[Label] | None, k: int, size: int) -> Image.Image:
    """Axial slice ``k`` with its labels blended, radiological, letterboxed to a square."""
    rgba = None
    if preview.labels is not None:
        slice_labels = preview.labels[:, :, k]
        if table is None:
            table = default_label_table(np.unique(slice_labels))
        rgba = labels_to_rgba(slice_labels, table)
    return _blended_tile(preview.image_u8[:, :, k], rgba, preview.spacing_mm, size)


def _blended_tile(
    image_ij: np.ndarray,
    overlay_rgba_ij: np.ndarray | None,
    spacing_mm: Sequence[float],
    size: int,
) -> Image.Image:
    """One ``(i, j)`` grey or RGB slice with an RGBA overlay blended by its alpha,
    radiological, letterboxed to a `size` square keeping the physical aspect ratio."""
    if image_ij.ndim == 3:
        rgb = image_ij.astype(np.float32)
    else:
        grey = image_ij.astype(np.float32)
        rgb = np.repeat(grey[:, :, np.newaxis], 3, axis=2)
    if overlay_rgba_ij is not None:
        rgba = overlay_rgba_ij.astype(np.float32)
        alpha = rgba[:, :, 3:] / 255.0
        rgb = rgb * (1.0 - alpha) + rgba[:, :, :3] * alpha
    picture = _radiological(np.rint(rgb).astype(np.uint8))

    height_mm = picture.shape[0] * spacing_mm[1]
    width_mm = picture.shape[1] * spacing_mm[0]
    scale = size / max(height_mm, width_mm)
    width_px = max(1, min(size, round(width_mm * scale)))
    height_px = max(1, min(size, round(height_mm * scale)))
    resized = Image.fromarray(picture).resize((width_px, height_px), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (size, size))
    canvas.paste(resized, ((size - width_px) // 2, (size - height_px) // 2))
    return canvas


def mosaic_slice_indices(preview: Preview, count: int) -> list[int]:
    """Up to `count` axial slices evenly spread over the slices that hold any image content."""
    axes = (0, 1, 3) if preview.is_rgb else (0, 1)
    filled = np.flatnonzero(np.count_nonzero(preview.image_u8, axis=axes))
    if filled.size == 0:
        filled = np.arange(preview.shape[2])
    picks = np.linspace(filled[0], filled[-1], num=min(count, filled[-1] - filled[0] + 1))
    return sorted({int(round(k)) for k in picks})


def mosaic_png(
    preview: Preview, table: Sequence[Label] | None, *, columns: int = 4, tile: int = 96
) -> bytes:
    """A grid of axial slices (inferior to superior, row by row) as one PNG.

    Parameters
    ----------
    preview : Preview
        From :func:`build_preview`.
    table : sequence of Label, optional
        Label colours, as for :func:`thumbnail_png`.
    columns : int
        Tiles per row; up to ``columns * columns`` slices are shown.
    tile : int
        Width and height of one tile in pixels.

    Returns
    -------
    bytes
        PNG, RGB.
    """
    if columns < 1 or tile < 1:
        raise ValueError(f'Arguments "columns" and "tile" must be positive, got {columns}, {tile}.')
    ks = mosaic_slice_indices(preview, columns * columns)
    rows = -(-len(ks) // columns)
    canvas = Image.new("RGB", (columns * tile, rows * tile))
    for n, k in enumerate(ks):
        canvas.paste(
            _slice_tile(preview, table, k, tile), ((n % columns) * tile, (n // columns) * tile)
        )
    return _png(canvas)


def overlay_slice_indices(overlay_rgba: np.ndarray, count: int) -> list[int]:
    """Up to `count` axial slices ``k`` evenly chosen among those the overlay covers.

    Every slice returned shows some label (non-zero alpha); an empty overlay gives [].
    """
    covered = np.flatnonzero(np.count_nonzero(overlay_rgba[..., 3], axis=(0, 1)))
    if covered.size == 0 or count < 1:
        return []
    picks = np.linspace(0, covered.size - 1, num=min(count, covered.size))
    return sorted({int(covered[int(round(n))]) for n in picks})


def overlay_mosaic_png(
    image_u8: np.ndarray,
    overlay_rgba: np.ndarray,
    spacing_mm: Sequence[float],
    *,
    columns: int = 4,
    tile: int = 160,
) -> bytes:
    """A grid of the labelled axial slices with the label overlay, as one PNG.

    Unlike :func:`mosaic_png`, which spreads its slices over the whole image, the
    slices are chosen among those the labels cover, so every tile shows the overlay
    (a report's reader wants to see the segmentation, however small).

    Parameters
    ----------
    image_u8 : numpy.ndarray
        Preview grey levels ``(i, j, k)`` (or RGB ``(i, j, k, 3)``), canonical RAS.
    overlay_rgba : numpy.ndarray
        uint8 ``(i, j, k, 4)`` label colours on the same grid, alpha 0 off the labels
        (as stored in ``labels.vti``).
    spacing_mm : sequence of float
        Voxel size along ``i, j, k``.
    columns, tile : int
        Tiles per row (up to ``columns * columns`` slices) and tile size in pixels.

    Returns
    -------
    bytes
        PNG, RGB; slices inferior to superior, row by row, each radiological.
    """
    if columns < 1 or tile < 1:
        raise ValueError(f'Arguments "columns" and "tile" must be positive, got {columns}, {tile}.')
    if overlay_rgba.shape[:3] != image_u8.shape[:3] or overlay_rgba.shape[3:] != (4,):
        raise ValueError(
            f'Argument "overlay_rgba" must be (i, j, k, 4) on the image grid {image_u8.shape[:3]}, '
            f"got {overlay_rgba.shape}."
        )
    ks = overlay_slice_indices(overlay_rgba, columns * columns)
    if not ks:
        ks = [image_u8.shape[2] // 2]
    rows = -(-len(ks) // columns)
    canvas = Image.new("RGB", (min(columns, len(ks)) * tile, rows * tile))
    for n, k in enumerate(ks):
        picture = _blended_tile(image_u8[:, :, k], overlay_rgba[:, :, k], spacing_mm, tile)
        canvas.paste(picture, ((n % columns) * tile, (n // columns) * tile))
    return _png(canvas)
