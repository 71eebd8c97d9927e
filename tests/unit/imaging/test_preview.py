import io

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from portal.imaging.dicom import find_dicom_series, read_dicom_series
from portal.imaging.labels import Label
from portal.imaging.nifti import read_label_nifti, read_nifti
from portal.imaging.preview import build_preview, thumbnail_png, thumbnail_slice_index
from portal.imaging.volume import Volume, to_closest_canonical
from portal.imaging.windowing import CT_DEFAULT_WINDOW, Window, apply_window


def _png(payload: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(payload))
    assert image.format == "PNG" and image.mode == "RGB"
    return np.asarray(image)


@pytest.fixture(scope="module")
def mni(mni_1mm):
    labels, _ = read_label_nifti(mni_1mm.label_path)
    return read_nifti(mni_1mm.image_paths[0]), labels


def test_stride_grid_and_window(mni):
    volume, labels = mni
    preview = build_preview(volume, labels, max_dim=96)
    assert preview.source_shape == (197, 233, 189)
    assert preview.step == (3, 3, 2)
    assert preview.shape == (66, 78, 95) == preview.labels.shape
    assert preview.image_u8.dtype == np.uint8 and preview.labels.dtype == np.uint16
    assert preview.spacing_mm == (3.0, 3.0, 2.0)
    assert preview.origin_mm == (-98.0, -134.0, -72.0)
    expected = apply_window(volume.data[::3, ::3, ::2], preview.window)
    np.testing.assert_array_equal(preview.image_u8, expected)
    np.testing.assert_array_equal(preview.labels, labels[::3, ::3, ::2])
    assert max(build_preview(volume).shape) <= 192


def test_las_and_dicom_copies_preview_identically(studies_by_name, mni):
    volume, labels = mni
    reference = build_preview(volume, labels)
    las = studies_by_name["MNI152 T1 1mm (LAS on disk)"]
    las_preview = build_preview(read_nifti(las.image_paths[0]), read_label_nifti(las.label_path)[0])
    (series,) = find_dicom_series(studies_by_name["MNI152 T1 1mm (DICOM)"].image_paths)
    dicom_preview = build_preview(read_dicom_series(series), labels)
    for other in (las_preview, dicom_preview):
        np.testing.assert_array_equal(other.image_u8, reference.image_u8)
        np.testing.assert_array_equal(other.labels, reference.labels)
        np.testing.assert_allclose(other.origin_mm, reference.origin_mm, atol=1e-4)
        np.testing.assert_allclose(other.spacing_mm, reference.spacing_mm, atol=1e-6)
    assert thumbnail_png(las_preview, None) == thumbnail_png(reference, None)


def test_ct_uses_soft_tissue_window():
    (series,) = find_dicom_series([get_testdata_file("CT_small.dcm", download=False)])
    preview = build_preview(read_dicom_series(series))
    assert preview.window == CT_DEFAULT_WINDOW
    assert preview.step == (1, 1, 1)


def test_labels_must_match_image_shape(mni):
    volume, labels = mni
    with pytest.raises(ValueError, match="shape"):
        build_preview(volume, labels[:-1])


def test_ras_x_points_to_the_subjects_right():
    # nibabel's axis codes name the positive end of each world axis.
    assert nib.orientations.aff2axcodes(np.eye(4)) == ("R", "A", "S")
    # DICOM's +x (LPS) is the patient's Left, so RAS +x must be Right.
    assert nib.orientations.aff2axcodes(np.diag([-1.0, -1.0, 1.0, 1.0])) == ("L", "P", "S")


def _half_bright_volume(axis: int) -> Volume:
    data = np.zeros((40, 30, 10), np.int16)
    index = [slice(None)] * 3
    index[axis] = slice(data.shape[axis] * 3 // 4, None)
    data[tuple(index)] = 100
    return Volume(data, np.eye(4), "MR", "synthetic")


def test_thumbnail_shows_right_on_the_left_and_anterior_on_top():
    window = Window(0.0, 100.0)
    right = _png(thumbnail_png(build_preview(_half_bright_volume(0), window=window), None))
    assert right.shape == (128, 128, 3)
    middle_rows = right[50:80, :, 0]
    assert middle_rows[:, :25].min() > 200  # subject's Right (high i) on the left
    assert middle_rows[:, 40:].max() < 30
    anterior = _png(thumbnail_png(build_preview(_half_bright_volume(1), window=window), None))
    # 40 x 30 mm keeps its aspect: letterboxed to 128 x 96 from row 16.
    assert anterior[:16].max() == 0 and anterior[-16:].max() == 0
    assert anterior[17:35, 10:118, 0].min() > 200  # Anterior (high j) on top
    assert anterior[50:110, :, 0].max() < 30


def test_thumbnail_of_mni_marker_in_right_hemisphere(mni):
    volume, _ = mni
    # A labelled block centred at world x = +40 mm, i.e. in the right hemisphere.
    centre = np.rint(np.linalg.inv(volume.affine_ras) @ (40.0, -20.0, 10.0, 1.0))[:3].astype(int)
    labels = np.zeros(volume.shape, np.uint16)
    i, j, k = centre
    labels[i - 6 : i + 6, j - 6 : j + 6, k - 3 : k + 3] = 1
    preview = build_preview(volume, labels)
    k_shown = thumbnail_slice_index(preview)
    assert preview.labels[:, :, k_shown].any()
    table = [Label(1, "marker", (255, 0, 0))]
    picture = _png(thumbnail_png(preview, table)).astype(int)
    red = (picture[:, :, 0] - picture[:, :, 1]) > 60
    columns = np.flatnonzero(red.any(axis=0))
    assert columns.size and columns.max() < 64  # right hemisphere drawn on the left
    # The same study stored LAS on disk draws the marker in the same place.
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1.0, volume.shape[0] - 1
    las = Volume(volume.data[::-1], volume.affine_ras @ flip, "MR", "las")
    assert to_closest_canonical(las).orientation == "RAS"
    las_png = thumbnail_png(build_preview(las, labels[::-1]), table)
    assert las_png == thumbnail_png(preview, table)


def test_thumbnail_of_axial_dicom_matches_stored_display():
    # With ImageOrientationPatient (1,0,0,0,1,0), stored rows and columns are
    # already shown in radiological convention by every DICOM viewer.
    path = get_testdata_file("CT_small.dcm", download=False)
    (series,) = find_dicom_series([path])
    preview = build_preview(read_dicom_series(series))
    ds = pydicom.dcmread(path)
    stored = apply_window(ds.pixel_array.astype(np.float32) - 1024, preview.window)
    grey = _png(thumbnail_png(preview, None, size=128))[:, :, 0].astype(float)
    same = np.corrcoef(grey.ravel(), stored.astype(float).ravel())[0, 1]
    mirrored = np.corrcoef(grey.ravel(), stored[:, ::-1].astype(float).ravel())[0, 1]
    assert same > 0.99 and mirrored < 0.9


def test_mosaic_spreads_slices_over_the_content_and_tiles_them() -> None:
    from io import BytesIO

    from PIL import Image

    from portal.imaging.preview import mosaic_png, mosaic_slice_indices
    from portal.imaging.volume import Volume

    data = np.zeros((20, 24, 30), np.int16)
    data[4:16, 4:20, 5:25] = 100  # content only in slices 5..24
    volume = Volume(data=data, affine_ras=np.eye(4), modality="MR")
    preview = build_preview(volume, None, max_dim=64)
    ks = mosaic_slice_indices(preview, 16)
    assert ks[0] == 5 and ks[-1] == 24 and len(ks) == 16
    assert mosaic_slice_indices(preview, 100) == list(range(5, 25))
    image = Image.open(BytesIO(mosaic_png(preview, None, columns=4, tile=32)))
    assert image.size == (128, 128)
    # The first tile (slice 5) shows the content, bright in its middle.
    tile = np.asarray(image)[:32, :32]
    assert tile[16, 16].max() > 200 and tile[0, 0].max() == 0
