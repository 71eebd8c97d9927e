"""Canonical grids and slices against nibabel's ``as_closest_canonical``."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest

from portal.imaging.slices import (
    SliceAxis,
    canonical_grid,
    slice_origin_mm,
    take_slice,
)
from portal.imaging.volume import Volume, to_closest_canonical


def _affines() -> list[np.ndarray]:
    """Every axis permutation and flip, with unequal spacings, plus an oblique grid."""
    out = []
    spacing = np.array([0.7, 1.3, 2.5])
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product((1.0, -1.0), repeat=3):
            rotation = np.zeros((3, 3))
            for n, axis in enumerate(perm):
                rotation[axis, n] = flips[n] * spacing[n]
            affine = np.eye(4)
            affine[:3, :3] = rotation
            affine[:3, 3] = (12.0, -40.0, 7.5)
            out.append(affine)
    angle = np.radians(12.0)
    oblique = np.eye(4)
    oblique[:3, :3] = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    ) @ np.diag(spacing)
    oblique[:3, 3] = (-5.0, 3.0, 2.0)
    out.append(oblique)
    return out


@pytest.mark.parametrize("affine", _affines())
def test_canonical_grid_is_nibabels_from_the_header_alone(affine: np.ndarray) -> None:
    shape = (5, 6, 7)
    canonical = nib.as_closest_canonical(nib.Nifti1Image(np.zeros(shape, np.int16), affine))
    grid = canonical_grid(shape, affine)
    assert grid.shape == canonical.shape
    np.testing.assert_allclose(grid.spacing_mm, nib.affines.voxel_sizes(canonical.affine))
    np.testing.assert_allclose(grid.origin_mm, canonical.affine[:3, 3], atol=1e-9)
    ours = to_closest_canonical(Volume(np.zeros(shape, np.int16), affine))
    assert grid.shape == ours.shape
    np.testing.assert_allclose(grid.origin_mm, ours.affine_ras[:3, 3], atol=1e-9)


@pytest.mark.parametrize("axis", list(SliceAxis))
def test_take_slice_of_a_canonical_volume_is_nibabels_slice(axis: SliceAxis) -> None:
    affine = np.array([[0, 0, -2.0, 9], [1.5, 0, 0, -3], [0, -1.0, 0, 4], [0, 0, 0, 1]])
    data = np.random.default_rng(3).integers(-1000, 1000, (6, 7, 8)).astype(np.int16)
    canonical = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
    expected = np.asanyarray(canonical.dataobj)
    grid = canonical_grid(data.shape, affine)
    for index in range(canonical.shape[axis.dim]):
        cut = take_slice(np.asfortranarray(expected), axis, index)
        np.testing.assert_array_equal(cut, np.take(expected, [index], axis=axis.dim))
        voxel = np.zeros(3)
        voxel[axis.dim] = index
        np.testing.assert_allclose(
            slice_origin_mm(grid, axis, index), nib.affines.apply_affine(canonical.affine, voxel)
        )


def test_take_slice_keeps_rgba_components_last() -> None:
    rgba = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)
    assert take_slice(rgba, SliceAxis.AXIAL, 3).shape == (2, 3, 1, 4)
    assert take_slice(rgba, SliceAxis.SAGITTAL, 1).shape == (1, 3, 4, 4)


@pytest.mark.parametrize("index", [-1, 4])
def test_an_index_outside_the_axis_is_refused_with_both_named(index: int) -> None:
    with pytest.raises(IndexError, match=rf"axial slice {index} is outside 0\.\.3"):
        take_slice(np.zeros((2, 3, 4)), SliceAxis.AXIAL, index)
    grid = canonical_grid((2, 3, 4), np.eye(4))
    with pytest.raises(IndexError, match="outside 0..3"):
        slice_origin_mm(grid, SliceAxis.AXIAL, index)


def test_axis_names_are_the_url_segments() -> None:
    assert [(a.value, a.dim) for a in SliceAxis] == [("axial", 2), ("coronal", 1), ("sagittal", 0)]
    with pytest.raises(ValueError):
        SliceAxis("oblique")
