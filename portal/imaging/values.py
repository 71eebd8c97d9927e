"""Preview voxels in the image's own units, for window/level and readouts in the browser.

``image.vti`` holds grey levels windowed once at import; a reviewer who wants another
window (lung, bone) or the value under the pointer (HU) needs the values themselves.
:func:`value_preview` takes them from a :class:`~portal.imaging.preview.Preview`, so they
lie on exactly the grid of ``image.vti`` (same voxels, origin and spacing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from portal.imaging.preview import Preview
from portal.imaging.windowing import Window, robust_window

__all__ = ["ValuePreview", "compact_values", "real_values", "units_of", "value_preview"]

_INT16 = np.iinfo(np.int16)


def units_of(modality: str) -> str:
    """Unit of the voxel values: ``"HU"`` for CT (after the modality rescale), else ``""``.

    Examples
    --------
    >>> units_of("CT"), units_of("MR")
    ('HU', '')
    """
    return "HU" if modality.upper() == "CT" else ""


def compact_values(values: np.ndarray) -> np.ndarray:
    """The values as int16 when all are whole numbers within int16, else float32.

    Non-finite floats (NaN, infinities: "no data" in some NIfTI maps) become 0, since a
    browser colour map or range over them would be meaningless.

    Examples
    --------
    >>> import numpy as np
    >>> compact_values(np.array([-1024.0, 3071.0])).dtype.name
    'int16'
    >>> compact_values(np.array([0.5, 2.0])).dtype.name
    'float32'
    """
    if values.dtype.kind == "f":
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    if values.size == 0:
        return values.astype(np.int16)
    low, high = values.min(), values.max()
    fits = _INT16.min <= low and high <= _INT16.max
    whole = values.dtype.kind in "biu" or bool(np.all(values == np.round(values)))
    if fits and whole:
        return np.ascontiguousarray(values, dtype=np.int16)
    return np.ascontiguousarray(values, dtype=np.float32)


def real_values(
    values: np.ndarray, *, monochrome1_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Voxels as read, in the units of the modality LUT, compacted (:func:`compact_values`).

    Parameters
    ----------
    values : numpy.ndarray
        Grey-level voxels as the reader gives them (rescale applied), any shape.
    monochrome1_range : tuple of float, optional
        For a DICOM MONOCHROME1 image: (min, max) of the whole volume as read; the
        reader's inversion (``min + max - value``) is undone with it.

    Returns
    -------
    numpy.ndarray
        int16 or float32, same shape.

    Examples
    --------
    >>> import numpy as np
    >>> real_values(np.array([0.0, 4000.0]), monochrome1_range=(0.0, 4095.0)).tolist()
    [4095, 95]
    """
    if monochrome1_range is not None:
        about = float(monochrome1_range[0]) + float(monochrome1_range[1])
        wide = values.astype(np.float64 if values.dtype.kind == "f" else np.int64)
        values = about - wide
    return compact_values(values)


@dataclass(frozen=True)
class ValuePreview:
    """Real-unit preview voxels and what the browser needs to display them.

    Parameters
    ----------
    values : numpy.ndarray
        int16 or float32, canonical RAS ``(i, j, k)`` on the preview grid.
    value_range : tuple of float
        Smallest and largest of `values`.
    auto_window : Window
        0.5 and 99.5 percentiles of the non-zero `values`.
    default_window : Window
        The window ``image.vti`` was made with, in the units of `values`.
    invert : bool
        True when low values are to be shown bright (DICOM MONOCHROME1).
    """

    values: np.ndarray
    value_range: tuple[float, float]
    auto_window: Window
    default_window: Window
    invert: bool

    def meta(self, modality: str, frame_of_reference: str | None) -> dict[str, Any]:
        """The ``meta.json`` keys describing ``values.vti`` (JSON types only)."""
        return {
            "modality": modality,
            "units": units_of(modality),
            "value_range": [self.value_range[0], self.value_range[1]],
            "auto_window": [self.auto_window.low, self.auto_window.high],
            "default_window": [self.default_window.low, self.default_window.high],
            "invert": self.invert,
            "frame_of_reference": frame_of_reference or None,
            "values_dtype": self.values.dtype.name,
        }


def value_preview(
    preview: Preview, *, monochrome1_range: tuple[float, float] | None = None
) -> ValuePreview:
    """The real-unit voxels of a grey-level preview.

    Parameters
    ----------
    preview : Preview
        From :func:`~portal.imaging.preview.build_preview` of a grey-level volume.
    monochrome1_range : tuple of float, optional
        For a DICOM MONOCHROME1 image: (min, max) of the whole volume as read. The
        reader inverted it (``min + max - value``, so that ``image.vti`` shows bright
        for high); the inversion is undone here so the values are those of the
        modality LUT again, and the result says ``invert``. The default window is
        mirrored the same way.

    Returns
    -------
    ValuePreview

    Raises
    ------
    ValueError
        For an RGB preview (it has no single value per voxel).
    """
    if preview.values is None:
        raise ValueError('Argument "preview" is RGB: it has no real-unit values.')
    window = preview.window
    if monochrome1_range is not None:
        about = float(monochrome1_range[0]) + float(monochrome1_range[1])
        window = Window(about - window.high, about - window.low)
    compact = real_values(preview.values, monochrome1_range=monochrome1_range)
    if compact.size:
        value_range = (float(compact.min()), float(compact.max()))
    else:
        value_range = (0.0, 0.0)
    return ValuePreview(
        values=compact,
        value_range=value_range,
        auto_window=robust_window(compact),
        default_window=Window(float(window.low), float(window.high)),
        invert=monochrome1_range is not None,
    )
