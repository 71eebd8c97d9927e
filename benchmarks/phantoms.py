"""Generated test data shared by the benchmarks: a CT-like phantom with its organ labels.

Import from a script in this folder (``python benchmarks/<script>.py`` puts the folder on
``sys.path``): ``from phantoms import ct_phantom``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from portal.imaging.nifti import write_nifti

CT_SHAPE = (512, 512, 300)  # (i, j, k): columns, rows, slices
CT_SPACING_MM = (0.7, 0.7, 1.0)
#: Label values of :func:`ct_phantom_with_labels`, painted in this order (a later one wins).
CT_LABELS = {1: "organ", 2: "right lung", 3: "left lung", 4: "spine", 5: "ribs"}


def ct_phantom(shape: tuple[int, int, int] = CT_SHAPE, seed: int = 0) -> np.ndarray:
    """A CT-like int16 volume in HU, (i, j, k) order, deterministic.

    Air (-1000) around an elliptic body whose outline changes along k: a fat layer
    (-90), soft tissue (45), an organ (60), lungs (-850) in the upper half, a spine
    (cortical 1100, marrow 300) and ribs (900); Gaussian noise of 18 HU inside the
    body and 6 HU in air, clipped to [-1024, 3071] as a 12-bit scanner stores it. Its
    gzip ratio (~46 %) is that of a real CT (70 MB for 157 MB).
    """
    return _phantom(shape, seed, labels=None)


def ct_phantom_with_labels(
    shape: tuple[int, int, int] = CT_SHAPE, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ct_phantom` (the same voxels) and a uint8 label map of its structures.

    Labels are :data:`CT_LABELS`: each structure's geometric outline, noise-free.
    """
    labels = np.zeros(shape, np.uint8)
    return _phantom(shape, seed, labels=labels), labels


def _phantom(shape: tuple[int, int, int], seed: int, labels: np.ndarray | None) -> np.ndarray:
    ni, nj, nk = shape
    rng = np.random.default_rng(seed)
    out = np.empty(shape, np.int16)
    i = np.arange(ni, dtype=np.float32)[:, None] - ni / 2
    j = np.arange(nj, dtype=np.float32)[None, :] - nj / 2
    for k in range(nk):
        t = k / max(nk - 1, 1)
        a = 0.40 * ni * (1 + 0.06 * np.sin(3.1 * t))
        b = 0.28 * nj * (1 + 0.05 * np.cos(2.3 * t))
        r = (i / a) ** 2 + (j / b) ** 2
        hu = np.full((ni, nj), -1000, np.float32)
        lab = np.zeros((ni, nj), np.uint8)
        paint = functools.partial(_paint, hu, lab)
        paint(r < 1, -90)
        paint(r < 0.85, 45)
        organ = ((i + 0.15 * ni) / (0.12 * ni)) ** 2 + ((j - 0.02 * nj) / (0.10 * nj)) ** 2
        paint(organ < 1, 60, 1)
        if t > 0.45:
            lung = 0.13 * ni * min(1.0, (t - 0.45) * 6)
            for side, label in ((-1, 2), (1, 3)):
                inside = ((i - side * 0.17 * ni) / lung) ** 2 + (
                    (j + 0.02 * nj) / (1.3 * lung)
                ) ** 2
                paint(inside < 1, -850, label)
        spine = i**2 + (j - 0.17 * nj) ** 2
        paint(spine < (0.045 * ni) ** 2, 1100, 4)
        paint(spine < (0.03 * ni) ** 2, 300, 4)
        for angle in np.linspace(0.3, np.pi - 0.3, 7):
            for side in (-1, 1):
                ci = side * 0.855 * a * np.cos(angle)
                cj = -0.9 * b * np.sin(angle - np.pi / 2)
                paint((i - ci) ** 2 + (j - cj) ** 2 < (0.012 * ni) ** 2, 900, 5)
        noise = rng.standard_normal((ni, nj), dtype=np.float32)
        hu += noise * np.where(hu > -950, 18, 6).astype(np.float32)
        out[:, :, k] = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
        if labels is not None:
            labels[:, :, k] = lab
    return out


def _paint(hu: np.ndarray, lab: np.ndarray, mask: np.ndarray, value: float, label: int = 0) -> None:
    hu[mask] = value
    if label:
        lab[mask] = label


def ct_affine(shape: tuple[int, int, int] = CT_SHAPE) -> np.ndarray:
    """Voxel-to-RAS affine of the phantom: CT_SPACING_MM, centred on the origin."""
    affine = np.diag([*CT_SPACING_MM, 1.0])
    affine[:3, 3] = [-s * n / 2 for s, n in zip(CT_SPACING_MM, shape, strict=True)]
    return affine


def write_ct_study(
    folder: Path, shape: tuple[int, int, int] = CT_SHAPE, seed: int = 0, name: str = "ct"
) -> tuple[Path, Path]:
    """The phantom and its label map as ``<name>.nii.gz`` and ``<name>-label.nii.gz``."""
    hu, labels = ct_phantom_with_labels(shape, seed)
    affine = ct_affine(shape)
    image = write_nifti(folder / f"{name}.nii.gz", hu, affine)
    label = write_nifti(folder / f"{name}-label.nii.gz", labels, affine)
    return image, label
