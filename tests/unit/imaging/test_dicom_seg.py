"""DICOM SEG read onto its image's grid, on SEGs that highdicom makes for real MNI152 series.

Each source series is a crop of nilearn's MNI152 T1 template written as DICOM
and read back with :func:`read_dicom_series`; the segments are nilearn's grey
and white matter masks (which overlap) and a bright-intensity threshold of
the image, all on the template grid and cropped the same way.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from nilearn import datasets
from pydicom.dataset import Dataset
from pydicom.pixels import pack_bits
from pydicom.sr.codedict import codes

from portal.imaging.dicom import find_dicom_series, read_dicom_series, write_dicom_series
from portal.imaging.dicom_seg import (
    is_dicom_seg,
    read_dicom_seg,
    referenced_instance_uids,
    referenced_series_uid,
)
from portal.imaging.errors import ImagingError
from portal.imaging.labels import Label, label_color
from portal.imaging.nifti import read_nifti
from portal.imaging.volume import LPS_TO_RAS, Volume

# The same block through the middle of the brain as test_dicom.py: 40 x 36 x 12.
CROP_START = (78, 98, 88)
CROP_SIZE = (40, 36, 12)


@dataclass(frozen=True)
class Source:
    """A DICOM series, its image as read back, and the masks on its grid."""

    image: Volume
    series_uid: str
    datasets: list[Dataset]  # datasets[k] is the file of image slice k
    masks: np.ndarray  # bool (i, j, k, segment) in the image's voxel order
    probabilities: np.ndarray  # float (i, j, k, 2): grey and white matter templates


def _crop(array: np.ndarray, start=CROP_START, size=CROP_SIZE) -> np.ndarray:
    index = tuple(slice(a, a + n) for a, n in zip(start, size, strict=True))
    return np.ascontiguousarray(array[index])


def _crop_affine(affine: np.ndarray, start=CROP_START) -> np.ndarray:
    out = affine.copy()
    out[:3, 3] = (affine @ (*start, 1))[:3]
    return out


def _rotation(degrees: float) -> np.ndarray:
    angle = np.deg2rad(degrees)
    axis = np.array([1.0, 1.0, 0.5]) / np.linalg.norm([1.0, 1.0, 0.5])
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def _write_and_read(volume: Volume, folder: Path) -> tuple[Volume, str, list[Dataset]]:
    write_dicom_series(
        volume, folder, patient_name="Seg^Test", study_description="s", series_description="d"
    )
    (series,) = find_dicom_series([folder])
    image = read_dicom_series(series)
    # Put each file at the k its position gives through the image's own
    # affine, and check that its pixels are that slice of the image.
    to_voxel = np.linalg.inv(image.affine_ras)
    by_k: dict[int, Dataset] = {}
    for path in series.paths:
        ds = pydicom.dcmread(path)
        ijk = to_voxel @ LPS_TO_RAS @ (*[float(v) for v in ds.ImagePositionPatient], 1.0)
        np.testing.assert_allclose(ijk[:3], np.rint(ijk[:3]), atol=1e-4)
        k = int(np.rint(ijk[2]))
        np.testing.assert_array_equal(image.data[:, :, k], ds.pixel_array.T)
        by_k[k] = ds
    return image, series.series_uid, [by_k[k] for k in range(image.shape[2])]


@pytest.fixture(scope="module")
def mni_volume(mni_1mm) -> Volume:
    return read_nifti(mni_1mm.image_paths[0])


@pytest.fixture(scope="module")
def tissue(mni_volume) -> dict[str, np.ndarray]:
    """nilearn's tissue maps, on the demo template's own grid."""
    maps = {
        "gm": datasets.load_mni152_gm_mask(resolution=1),
        "wm": datasets.load_mni152_wm_mask(resolution=1),
        "gm_p": datasets.load_mni152_gm_template(resolution=1),
        "wm_p": datasets.load_mni152_wm_template(resolution=1),
    }
    for img in maps.values():
        np.testing.assert_array_equal(img.affine, mni_volume.affine_ras)
        assert img.shape == mni_volume.shape
    return {name: np.asarray(img.get_fdata()) for name, img in maps.items()}


def _crop_masks(mni_volume: Volume, tissue: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    data = _crop(mni_volume.data)
    bright = data > np.percentile(data, 80)
    masks = np.stack([_crop(tissue["gm"]) > 0, _crop(tissue["wm"]) > 0, bright], axis=-1)
    probabilities = np.stack([_crop(tissue["gm_p"]), _crop(tissue["wm_p"])], axis=-1)
    return data, masks, probabilities


@pytest.fixture(scope="module", params=["axial", "oblique"])
def source(request, tmp_path_factory, mni_volume, tissue) -> Source:
    data, masks, probabilities = _crop_masks(mni_volume, tissue)
    affine = _crop_affine(mni_volume.affine_ras)
    if request.param == "oblique":
        # Rotated about a skew axis, with a different voxel size on each
        # axis so that swapped row/column spacings would show.
        affine[:3, :3] = _rotation(20.0) @ np.diag([0.9, 1.1, 2.5])
    folder = tmp_path_factory.mktemp(f"series-{request.param}")
    image, uid, files = _write_and_read(Volume(data, affine, "MR", request.param), folder)
    # The image is the crop itself, in the same (i, j, k) order, so the
    # cropped masks are in the image's voxel order too.
    np.testing.assert_array_equal(image.data, data)
    np.testing.assert_allclose(image.affine_ras, affine, atol=1e-4, rtol=0)
    assert masks[..., 0].any() and masks[..., 1].any() and masks[..., 2].any()
    assert np.any(masks[..., 0] & masks[..., 1]), "want real overlap between gm and wm"
    return Source(image, uid, files, masks, probabilities)


def _description(number: int, name: str, color: str | None) -> hd.seg.SegmentDescription:
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=name,
        segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        display_color=hd.color.CIELabColor.from_string(color) if color else None,
    )


DESCRIPTIONS = [
    _description(1, "grey matter", "orange"),
    _description(2, "white matter", "dodgerblue"),
    _description(3, "bright", None),
]
EXPECTED_TABLE = [
    Label(1, "grey matter", (255, 165, 0)),
    Label(2, "white matter", (30, 144, 255)),
    Label(3, "bright", label_color(3)),
]


def _make_seg(
    src: Source,
    path: Path,
    stack: np.ndarray,
    *,
    seg_type: str = "BINARY",
    descriptions: list[hd.seg.SegmentDescription] = DESCRIPTIONS,
    ks: list[int] | None = None,
    datasets: list[Dataset] | None = None,
    **kwargs,
) -> Path:
    """Encode ``stack`` ((i, j, k, segment), or (i, j, k) labels) as a SEG of slices ``ks``."""
    datasets = datasets if datasets is not None else src.datasets
    ks = list(range(len(datasets))) if ks is None else ks
    # highdicom frames are (rows, columns) = (j, i), one per source image given.
    if stack.ndim == 4:
        pixels = np.stack([stack[:, :, k, :].transpose(1, 0, 2) for k in ks])
    else:
        pixels = np.stack([stack[:, :, k].T for k in ks])
    if pixels.dtype == np.bool_:
        pixels = pixels.astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=[datasets[k] for k in ks],
        pixel_array=pixels,
        segmentation_type=seg_type,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=100,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="portal tests",
        manufacturer_model_name="test_dicom_seg",
        software_versions="1",
        device_serial_number="1",
        **kwargs,
    )
    seg.save_as(path)
    return path


def _later_wins(masks: np.ndarray) -> np.ndarray:
    out = np.zeros(masks.shape[:3], dtype=np.uint16)
    for n in range(masks.shape[-1]):
        out[masks[..., n]] = n + 1
    return out


def _read(path: Path, src: Source, **kwargs):
    return read_dicom_seg(path, src.image.affine_ras, src.image.shape, **kwargs)


def test_binary_seg_reads_back_voxel_for_voxel(tmp_path, source):
    path = _make_seg(source, tmp_path / "seg.dcm", source.masks)
    labels, table, notes = _read(path, source)
    assert labels.dtype == np.uint16 and labels.shape == source.image.shape
    np.testing.assert_array_equal(labels, _later_wins(source.masks))
    assert table == EXPECTED_TABLE
    overlap = int(np.count_nonzero(source.masks.sum(axis=-1) > 1))
    assert overlap > 0
    assert notes == [
        f"{overlap} voxels are in more than one segment; "
        "each is labelled with the highest segment number"
    ]


def test_seg_is_recognised_and_names_its_series(tmp_path, source):
    path = _make_seg(source, tmp_path / "seg.dcm", source.masks)
    assert is_dicom_seg(path)
    assert referenced_series_uid(path) == source.series_uid
    sop_uids = {str(ds.SOPInstanceUID) for ds in source.datasets}
    assert referenced_instance_uids(path) == sop_uids


def test_is_dicom_seg_is_false_for_other_files(tmp_path, source):
    text = tmp_path / "notes.txt"
    text.write_text("not dicom")
    image_file = Path(source.datasets[0].filename)
    assert not is_dicom_seg(image_file)
    assert not is_dicom_seg(text)
    assert not is_dicom_seg(tmp_path / "missing.dcm")
    with pytest.raises(ImagingError, match="not a DICOM Segmentation") as err:
        _read(image_file, source)
    assert err.value.path == str(image_file)


def test_series_uid_without_referenced_series_sequence(tmp_path, source):
    path = _make_seg(source, tmp_path / "seg.dcm", source.masks)
    ds = pydicom.dcmread(path)
    del ds.ReferencedSeriesSequence
    ds.save_as(path)
    with pytest.raises(ImagingError, match="no ReferencedSeriesSequence") as err:
        referenced_series_uid(path)
    assert str(err.value).startswith(str(path))
    # The per-frame source references still say which images were segmented.
    assert referenced_instance_uids(path) == {str(d.SOPInstanceUID) for d in source.datasets}


def test_seg_of_some_slices_lands_on_their_k(tmp_path, source):
    ks = [1, 4, 5, 9]
    path = _make_seg(source, tmp_path / "seg.dcm", source.masks, ks=ks)
    assert int(pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames) < 3 * 12
    labels, _, _ = _read(path, source)
    expected = np.zeros_like(labels)
    expected[:, :, ks] = _later_wins(source.masks)[:, :, ks]
    np.testing.assert_array_equal(labels, expected)
    assert labels[:, :, ks].any()


def test_fractional_seg_is_thresholded_at_one_half(tmp_path, source):
    descriptions = DESCRIPTIONS[:2]
    path = _make_seg(
        source,
        tmp_path / "seg.dcm",
        source.probabilities,
        seg_type="FRACTIONAL",
        descriptions=descriptions,
        max_fractional_value=200,
    )
    labels, table, notes = _read(path, source)
    # highdicom stores round(p * 200); 100 of 200 and above is inside.
    stored = np.around(source.probabilities * 200)
    inside = stored >= 100
    assert inside[..., 0].any() and inside[..., 1].any()
    assert np.any((stored == 100) & (source.probabilities < 0.5)), "edge case not exercised"
    np.testing.assert_array_equal(labels, _later_wins(inside))
    assert table == EXPECTED_TABLE[:2]
    assert notes[0] == (
        "FRACTIONAL segmentation (PROBABILITY) thresholded at one half: "
        "stored values of 100 or more (of 200) are inside"
    )


def test_labelmap_seg(tmp_path, source):
    expected = _later_wins(source.masks)
    path = _make_seg(source, tmp_path / "seg.dcm", expected.astype(np.uint8), seg_type="LABELMAP")
    assert str(pydicom.dcmread(path, stop_before_pixels=True).SOPClassUID).endswith(".66.7")
    assert is_dicom_seg(path)
    labels, table, notes = _read(path, source)
    np.testing.assert_array_equal(labels, expected)
    assert table == EXPECTED_TABLE
    assert notes == []


def test_labelmap_colours_from_palette_lut(tmp_path, source):
    expected = _later_wins(source.masks)
    plain = [_description(n, name, None) for n, name in enumerate(["gm", "wm", "bright"], 1)]
    lut = hd.PaletteColorLUTTransformation.from_colors(
        ["black", "gold", "crimson", "teal"], palette_color_lut_uid=hd.UID()
    )
    path = _make_seg(
        source,
        tmp_path / "seg.dcm",
        expected.astype(np.uint8),
        seg_type="LABELMAP",
        descriptions=plain,
        palette_color_lut_transformation=lut,
    )
    assert pydicom.dcmread(path, stop_before_pixels=True).PhotometricInterpretation == (
        "PALETTE COLOR"
    )
    labels, table, _ = _read(path, source)
    np.testing.assert_array_equal(labels, expected)
    assert table == [
        Label(1, "gm", (255, 215, 0)),
        Label(2, "wm", (220, 20, 60)),
        Label(3, "bright", (0, 128, 128)),
    ]


def test_frame_order_is_not_trusted(tmp_path, source):
    path = _make_seg(source, tmp_path / "seg.dcm", source.masks)
    ds = pydicom.dcmread(path)
    n_frames, rows, cols = int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns)
    frames = ds.pixel_array.reshape(n_frames, rows, cols)
    order = list(range(n_frames))
    random.Random(3).shuffle(order)
    groups = list(ds.PerFrameFunctionalGroupsSequence)
    # Move each frame's pixels together with its position and segment number.
    ds.PerFrameFunctionalGroupsSequence = [groups[n] for n in order]
    ds.PixelData = pack_bits(frames[order])
    if "DimensionOrganizationType" in ds:
        del ds.DimensionOrganizationType  # "3D" would promise ordered frames
    shuffled = tmp_path / "shuffled.dcm"
    ds.save_as(shuffled)

    def positions(p: Path) -> list[list[float]]:
        groups = pydicom.dcmread(p).PerFrameFunctionalGroupsSequence
        return [[float(v) for v in g.PlanePositionSequence[0].ImagePositionPatient] for g in groups]

    assert positions(shuffled) != positions(path)
    labels, table, _ = _read(shuffled, source)
    np.testing.assert_array_equal(labels, _later_wins(source.masks))
    assert table == EXPECTED_TABLE


@pytest.fixture(scope="module")
def axial(tmp_path_factory, mni_volume, tissue) -> Source:
    data, masks, probabilities = _crop_masks(mni_volume, tissue)
    folder = tmp_path_factory.mktemp("axial")
    image, uid, files = _write_and_read(
        Volume(data, _crop_affine(mni_volume.affine_ras), "MR", "axial"), folder
    )
    return Source(image, uid, files, masks, probabilities)


def _other_grid(kind: str, mni_volume: Volume) -> Volume:
    affine = _crop_affine(mni_volume.affine_ras)
    data = _crop(mni_volume.data)
    if kind == "2 mm pixels":
        affine[:3, :2] *= 2.0
        data = np.ascontiguousarray(data[::2, ::2, :])
    elif kind == "shifted 10 voxels":
        affine = _crop_affine(mni_volume.affine_ras, (88, 98, 88))
        data = _crop(mni_volume.data, (88, 98, 88))
    elif kind == "shifted half a voxel":
        affine[0, 3] += 0.5
    elif kind == "rotated":
        affine[:3, :3] = _rotation(20.0)
    return Volume(data, affine, "MR", kind)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("2 mm pixels", r"one column step moves \(2\.000, 0\.000, 0\.000\).*2 x 2 mm"),
        ("shifted 10 voxels", r"covers image voxels i 10\.\.49, j 0\.\.35, k (\d+)\.\.\1, outside"),
        ("shifted half a voxel", r"is 0\.5 voxels off the image's voxel centres"),
        ("rotated", r"one column step moves \(0\.9"),
    ],
)
def test_seg_for_another_grid_is_refused(tmp_path, axial, mni_volume, kind, message):
    other, _, files = _write_and_read(_other_grid(kind, mni_volume), tmp_path / "other")
    mask = other.data > np.percentile(other.data, 80)
    assert mask[:, :, 0].any() and mask[:, :, -1].any()
    path = _make_seg(
        axial, tmp_path / "seg.dcm", mask[..., None], descriptions=DESCRIPTIONS[:1], datasets=files
    )
    with pytest.raises(ImagingError, match="SEG grid does not match the image grid") as err:
        _read(path, axial)
    assert err.value.path == str(path)
    assert re.search(message, err.value.reason), err.value.reason


@pytest.mark.parametrize("keep", [0.02, 0.5, 0.999])
def test_truncated_seg_is_refused_naming_the_file(tmp_path, axial, keep):
    whole = _make_seg(axial, tmp_path / "seg.dcm", axial.masks).read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole[: int(len(whole) * keep)])
    with pytest.raises(ImagingError, match="truncated") as err:
        _read(cut, axial)
    assert err.value.path == str(cut)
    assert str(err.value).startswith(f"{cut}: ")


def test_max_voxels_is_checked_before_decoding(tmp_path, axial):
    path = _make_seg(axial, tmp_path / "seg.dcm", axial.masks)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    declared = int(ds.Rows) * int(ds.Columns) * int(ds.NumberOfFrames)
    labels, _, _ = _read(path, axial, max_voxels=declared)
    assert labels.any()
    # With the pixel data cut short, decoding would fail; the size check
    # must come first and be the error reported.
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(path.read_bytes()[:-64])
    with pytest.raises(ImagingError, match="pixel data is truncated"):
        _read(cut, axial, max_voxels=declared)
    with pytest.raises(ImagingError, match=f"is {declared} values, more than the limit of"):
        _read(cut, axial, max_voxels=declared - 1)


def test_frame_without_position_is_refused(tmp_path, axial):
    path = _make_seg(axial, tmp_path / "seg.dcm", axial.masks)
    ds = pydicom.dcmread(path)
    del ds.PerFrameFunctionalGroupsSequence[3].PlanePositionSequence
    ds.save_as(path)
    with pytest.raises(ImagingError, match="ImagePositionPatient") as err:
        _read(path, axial)
    assert err.value.path == str(path)
