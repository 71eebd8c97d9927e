"""Grey-level windows: which value range maps to black..white for display."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "CT_DEFAULT_WINDOW",
    "CT_PRESETS",
    "Preset",
    "Window",
    "apply_window",
    "default_window",
    "robust_window",
]


@dataclass(frozen=True)
class Window:
    """A display window in the image's own units (HU for CT).

    Parameters
    ----------
    low, high : float
        Values at or below ``low`` show black, at or above ``high`` white.
    """

    low: float
    high: float

    @classmethod
    def from_level_width(cls, level: float, width: float) -> Window:
        """Window centred on ``level`` spanning ``width``.

        Examples
        --------
        >>> Window.from_level_width(40, 400)
        Window(low=-160.0, high=240.0)
        """
        return cls(float(level) - width / 2, float(level) + width / 2)


#: Level 40 HU, width 400 HU (-160..240 HU): the usual soft-tissue window,
#: in which fat, fluid, muscle and organs are distinct grey levels and bone
#: and air saturate to white and black, so both still stand out.
CT_DEFAULT_WINDOW = Window.from_level_width(40.0, 400.0)


@dataclass(frozen=True)
class Preset:
    """A named display window, as level and width in Hounsfield units.

    Parameters
    ----------
    key : str
        Short stable name (used in page state and automation).
    name : str
        What a radiologist calls it.
    level, width : float
        Centre and width of the window, in HU.
    """

    key: str
    name: str
    level: float
    width: float

    @property
    def window(self) -> Window:
        """The preset as a :class:`Window`."""
        return Window.from_level_width(self.level, self.width)


#: The CT windows a reading room uses daily, in the order a viewer lists them. Values are
#: the common textbook ones (level / width in HU): brain 40/80, subdural 75/200 (wider, to
#: separate a thin bleed from the skull), lung -600/1500, mediastinum 50/350, bone 400/1800,
#: abdomen (soft tissue) 50/400.
CT_PRESETS: tuple[Preset, ...] = (
    Preset("brain", "Brain", 40.0, 80.0),
    Preset("subdural", "Subdural", 75.0, 200.0),
    Preset("lung", "Lung", -600.0, 1500.0),
    Preset("mediastinum", "Mediastinum", 50.0, 350.0),
    Preset("bone", "Bone", 400.0, 1800.0),
    Preset("abdomen", "Abdomen", 50.0, 400.0),
)


def robust_window(data: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)) -> Window:
    """Window between two percentiles of the non-zero voxels.

    Zero is skipped because most MR volumes are mostly zero-filled background,
    which would otherwise pull the low percentile to 0 and waste grey levels.

    Examples
    --------
    >>> import numpy as np
    >>> robust_window(np.arange(0, 1001), (0, 100))
    Window(low=1.0, high=1000.0)
    """
    values = data[data != 0]
    if values.size == 0:
        return Window(0.0, 1.0)
    low, high = (float(v) for v in np.percentile(values, percentiles))
    if high <= low:
        high = low + 1.0
    return Window(low, high)


def default_window(data: np.ndarray, modality: str) -> Window:
    """:data:`CT_DEFAULT_WINDOW` for CT; else :func:`robust_window`, from 0 if data >= 0.

    Non-negative images (MR magnitudes) start the window at 0, so air is black and the
    darkest tissue dark grey; starting at the low percentile of tissue would paint that
    tissue black (a two-valued image would lose its lower value entirely).

    Examples
    --------
    >>> import numpy as np
    >>> default_window(np.array([0, 400, 400, 900]), "MR")
    Window(low=0.0, high=895.0)
    """
    if modality == "CT":
        return CT_DEFAULT_WINDOW
    window = robust_window(data)
    if data.size and float(data.min()) >= 0:
        return Window(0.0, window.high)
    return window


def apply_window(data: np.ndarray, window: Window) -> np.ndarray:
    """Map ``window.low..window.high`` linearly to 0..255 (uint8, clipped).

    Examples
    --------
    >>> import numpy as np
    >>> apply_window(np.array([-10.0, 0.0, 50.0, 100.0, 200.0]), Window(0.0, 100.0)).tolist()
    [0, 0, 128, 255, 255]
    """
    scale = 255.0 / (window.high - window.low)
    scaled = (data.astype(np.float32) - np.float32(window.low)) * np.float32(scale)
    return np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)
