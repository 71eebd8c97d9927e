"""Label resampling on request, checked against nilearn's nearest-neighbour resampling."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nilearn import datasets, image

from portal.imaging.resample import grid_difference, resample_labels


@pytest.fixture(scope="module")
def tissue_2mm() -> nib.Nifti1Image:
    """nilearn's real MNI152 grey/white-matter masks at 2 mm as one label map."""
    gm = datasets.load_mni152_gm_mask(resolution=2)
    wm = datasets.load_mni152_wm_mask(resolution=2)
    labels = np.zeros(gm.shape, np.uint16)
    labels[np.asanyarray(gm.dataobj) > 0] = 1
    labels[np.asanyarray(wm.dataobj) > 0] = 2
    return nib.Nifti1Image(labels, gm.affine)


def test_matches_nilearn_nearest_onto_1mm_grid(tissue_2mm: nib.Nifti1Image) -> None:
    target = datasets.load_mni152_template(resolution=1)
    ours = resample_labels(
        np.asanyarray(tissue_2mm.dataobj), tissue_2mm.affine, target.affine, target.shape
    )
    reference = image.resample_to_img(
        tissue_2mm, target, interpolation="nearest", force_resample=True, copy_header=True
    )
    expected = np.asanyarray(reference.dataobj).astype(np.uint16)
    np.testing.assert_array_equal(ours, expected)
    assert set(np.unique(ours)) == {0, 1, 2}


def test_exact_on_a_shifted_grid_and_outside_is_background(tissue_2mm: nib.Nifti1Image) -> None:
    labels = np.asanyarray(tissue_2mm.dataobj)
    shifted = tissue_2mm.affine.copy()
    shifted[:3, 3] += shifted[:3, :3] @ np.array([3.0, -2.0, 1.0])  # whole voxels
    out = resample_labels(labels, tissue_2mm.affine, shifted, labels.shape)
    np.testing.assert_array_equal(out[:-3, 2:, :-1], labels[3:, :-2, 1:])
    full = resample_labels(np.ones_like(labels), tissue_2mm.affine, shifted, labels.shape)
    assert not full[-3:].any() and not full[:, :2].any() and not full[:, :, -1].any()
    assert full[:-3, 2:, :-1].all()  # beyond the source grid is background, inside is not


def test_grid_difference_names_both_grids(tissue_2mm: nib.Nifti1Image) -> None:
    text = grid_difference(np.eye(4), (182, 218, 182), tissue_2mm.affine, tissue_2mm.shape)
    assert "(99, 117, 95) at 2x2x2 mm" in text and "(182, 218, 182) at 1x1x1 mm" in text
