"""The report's mosaic: only labelled slices, each with the label overlay blended."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from portal.imaging.labels import Label, labels_to_rgba
from portal.imaging.preview import build_preview, overlay_mosaic_png, overlay_slice_indices
from portal.imaging.volume import Volume


def _small_lesion() -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    data = np.zeros((20, 24, 30), np.int16)
    data[2:18, 2:22, :] = 100  # image content in every slice
    labels = np.zeros(data.shape, np.uint8)
    labels[8:12, 10:14, 12:15] = 1  # a lesion in slices 12..14 only
    preview = build_preview(Volume(data=data, affine_ras=np.eye(4), modality="MR"), labels)
    assert preview.labels is not None
    rgba = labels_to_rgba(preview.labels, [Label(1, "lesion", (255, 0, 0))])
    return preview.image_u8, rgba, preview.spacing_mm


def test_slices_are_chosen_among_the_labelled_ones() -> None:
    image, rgba, _ = _small_lesion()
    assert overlay_slice_indices(rgba, 16) == [12, 13, 14]
    assert overlay_slice_indices(rgba, 2) == [12, 14]
    assert overlay_slice_indices(np.zeros_like(rgba), 16) == []


def test_every_tile_shows_the_overlay_colour() -> None:
    image, rgba, spacing = _small_lesion()
    png = Image.open(BytesIO(overlay_mosaic_png(image, rgba, spacing, columns=4, tile=48)))
    assert png.size == (3 * 48, 48)  # three labelled slices, one row
    pixels = np.asarray(png.convert("RGB")).astype(int)
    for n in range(3):
        tile = pixels[:, n * 48 : (n + 1) * 48]
        red = (tile[..., 0] - tile[..., 1] > 60) & (tile[..., 1] == tile[..., 2])
        assert red.sum() > 4, n  # the lesion, blended red over the grey
        assert (tile.max(axis=2) - tile.min(axis=2) < 3).sum() > 100  # grey image around it
    with pytest.raises(ValueError, match="overlay_rgba"):
        overlay_mosaic_png(image, rgba[:-1], spacing)


def test_without_labels_the_middle_slice_is_shown() -> None:
    image, rgba, spacing = _small_lesion()
    png = Image.open(BytesIO(overlay_mosaic_png(image, np.zeros_like(rgba), spacing, tile=32)))
    assert png.size == (32, 32)
