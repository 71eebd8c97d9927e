import nibabel as nib
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from portal.imaging.errors import ImagingError
from portal.imaging.nifti import read_nifti
from portal.imaging.nrrd import read_nrrd, read_seg_nrrd
from portal.imaging.volume import LPS_TO_RAS

LPS_SPACES = ("left-posterior-superior", "LPS")
RAS_SPACES = ("right-anterior-superior", "RAS")


@pytest.fixture(scope="module")
def mni_crop() -> tuple[np.ndarray, np.ndarray]:
    """A 30 x 34 x 20 block of the real 2 mm MNI template (int16) and its RAS affine."""
    from nilearn.datasets import load_mni152_template

    img = load_mni152_template(resolution=2)
    # nilearn rescales the 8-bit template to 0..1; back to whole numbers.
    full = np.round(img.get_fdata() * 255).astype(np.int16)
    start = np.array([35, 40, 35])
    affine = np.array(img.affine, dtype=np.float64)
    affine[:3, 3] = (affine @ (*start, 1))[:3]
    data = np.ascontiguousarray(full[35:65, 40:74, 35:55])
    assert data.std() > 10  # brain, not background
    return data, affine


def _oblique(affine: np.ndarray) -> np.ndarray:
    """The same grid rotated 20 deg about x and 10 deg about z (in RAS)."""
    a, b = np.radians(20.0), np.radians(10.0)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    out = affine.copy()
    out[:3, :3] = rz @ rx @ affine[:3, :3]
    return out


def _write_nrrd(path, data, affine_ras, space, **extra) -> None:
    world = LPS_TO_RAS @ affine_ras if space in LPS_SPACES else affine_ras
    header = {
        "space": space,
        "space directions": world[:3, :3].T,
        "space origin": world[:3, 3],
        **extra,
    }
    nrrd.write(str(path), data, header)


def _sitk_affine_ras(image: sitk.Image) -> np.ndarray:
    """SimpleITK's LPS geometry as a RAS+ voxel-to-world affine."""
    affine = np.eye(4)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    affine[:3, :3] = direction * np.array(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return LPS_TO_RAS @ affine


@pytest.mark.parametrize("space", LPS_SPACES + RAS_SPACES)
@pytest.mark.parametrize("oblique", [False, True], ids=["aligned", "oblique"])
def test_matches_simpleitk_and_nifti(tmp_path, mni_crop, space, oblique):
    data, affine = mni_crop
    if oblique:
        affine = _oblique(affine)
    path = tmp_path / "crop.nrrd"
    _write_nrrd(path, data, affine, space)

    vol = read_nrrd(path)
    assert vol.shape == data.shape and vol.description == "crop"
    np.testing.assert_allclose(vol.affine_ras, affine, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(vol.data, data)

    image = sitk.ReadImage(str(path))
    np.testing.assert_allclose(vol.affine_ras, _sitk_affine_ras(image), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(vol.data, sitk.GetArrayFromImage(image).T)

    nifti_path = tmp_path / "crop.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), nifti_path)
    ref = read_nifti(nifti_path)
    np.testing.assert_allclose(vol.affine_ras, ref.affine_ras, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(vol.data, ref.data)
    assert vol.orientation == ref.orientation


def test_first_volume_of_4d(tmp_path, mni_crop):
    data, affine = mni_crop
    stack = np.stack([data, data + 1], axis=0)  # time axis first, as Slicer writes lists
    path = tmp_path / "t.nrrd"
    header = {
        "space": "LPS",
        "space directions": np.vstack([[np.nan] * 3, (LPS_TO_RAS @ affine)[:3, :3].T]),
        "space origin": (LPS_TO_RAS @ affine)[:3, 3],
        "kinds": ["list", "domain", "domain", "domain"],
    }
    nrrd.write(str(path), stack, header)
    vol = read_nrrd(path)
    np.testing.assert_array_equal(vol.data, data)
    np.testing.assert_allclose(vol.affine_ras, affine, atol=1e-4)


SEGMENT_KEYS = {
    "Segment0_ID": "Segment_1",
    "Segment0_Name": "left ventricle",
    "Segment0_Color": "0.5 0.25 1",
    "Segment0_LabelValue": "1",
    "Segment0_Layer": "0",
    "Segment1_ID": "Segment_2",
    "Segment1_Name": "tumour",
    "Segment1_Color": "1 0 0",
    "Segment1_LabelValue": "2",
    "Segment1_Layer": "0",
}


def test_seg_nrrd_single_layer_round_trip(tmp_path, mni_crop):
    data, affine = mni_crop
    labels = np.zeros(data.shape, np.uint8)
    labels[data > 150] = 1
    labels[:5, :5, :5] = 2
    path = tmp_path / "Segmentation.seg.nrrd"
    _write_nrrd(path, labels, affine, "left-posterior-superior", **SEGMENT_KEYS)
    out, out_affine, table = read_seg_nrrd(path)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, labels)
    np.testing.assert_allclose(out_affine, affine, atol=1e-4)
    assert [(lab.value, lab.name, lab.color) for lab in table] == [
        (1, "left ventricle", (128, 64, 255)),
        (2, "tumour", (255, 0, 0)),
    ]


def _two_layers(shape, overlap: bool) -> np.ndarray:
    layers = np.zeros((2, *shape), np.uint8)
    layers[0, :10] = 1
    layers[1, 8 if overlap else 10 : 20] = 1
    return layers


def _write_layers(path, layers, affine) -> None:
    keys = dict(SEGMENT_KEYS, Segment1_LabelValue="1", Segment1_Layer="1")
    world = LPS_TO_RAS @ affine
    header = {
        "space": "left-posterior-superior",
        "space directions": np.vstack([[np.nan] * 3, world[:3, :3].T]),
        "space origin": world[:3, 3],
        "kinds": ["list", "domain", "domain", "domain"],
        **keys,
    }
    nrrd.write(str(path), layers, header)


def test_seg_nrrd_layers_are_merged(tmp_path, mni_crop):
    data, affine = mni_crop
    layers = _two_layers(data.shape, overlap=False)
    path = tmp_path / "layers.seg.nrrd"
    _write_layers(path, layers, affine)
    out, out_affine, table = read_seg_nrrd(path)
    # Both segments use value 1 in their own layer: renumbered in segment order.
    np.testing.assert_array_equal(out, layers[0] * 1 + layers[1] * 2)
    np.testing.assert_allclose(out_affine, affine, atol=1e-4)
    assert [(lab.value, lab.name) for lab in table] == [(1, "left ventricle"), (2, "tumour")]


def test_seg_nrrd_overlapping_layers_refused(tmp_path, mni_crop):
    data, affine = mni_crop
    path = tmp_path / "overlap.seg.nrrd"
    _write_layers(path, _two_layers(data.shape, overlap=True), affine)
    with pytest.raises(ImagingError, match="overlapping layers are not supported yet") as info:
        read_seg_nrrd(path)
    assert info.value.path == str(path)


def test_plain_label_map_gets_default_table(tmp_path):
    labels = np.zeros((4, 5, 6), np.int16)
    labels[1, 2, 3] = 7
    path = tmp_path / "labels.nrrd"
    _write_nrrd(path, labels, np.eye(4), "RAS")
    out, _, table = read_seg_nrrd(path)
    assert out[1, 2, 3] == 7 and [lab.value for lab in table] == [7]


@pytest.fixture()
def raw_nrrd(tmp_path, mni_crop):
    data, affine = mni_crop
    path = tmp_path / "raw.nrrd"
    _write_nrrd(path, data, affine, "LPS", encoding="raw")
    return path


def test_truncated_data(raw_nrrd):
    raw = raw_nrrd.read_bytes()
    raw_nrrd.write_bytes(raw[: len(raw) - 1000])
    with pytest.raises(ImagingError, match="truncated") as info:
        read_nrrd(raw_nrrd)
    assert info.value.path == str(raw_nrrd)


def test_truncated_gzip_data(tmp_path, mni_crop):
    data, affine = mni_crop
    path = tmp_path / "gz.nrrd"
    _write_nrrd(path, data, affine, "LPS")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ImagingError, match="gz.nrrd"):
        read_nrrd(path)


def test_wrong_magic(raw_nrrd):
    raw_nrrd.write_bytes(b"NOPE0005" + raw_nrrd.read_bytes()[8:])
    with pytest.raises(ImagingError, match="not a readable NRRD file") as info:
        read_nrrd(raw_nrrd)
    assert info.value.path == str(raw_nrrd)


def test_declared_size_too_large_is_refused_before_reading(raw_nrrd):
    raw = raw_nrrd.read_bytes()
    raw_nrrd.write_bytes(raw.replace(b"sizes: 30 34 20", b"sizes: 30000 34000 20000", 1))
    with pytest.raises(ImagingError, match="more than the limit") as info:
        read_nrrd(raw_nrrd)
    assert info.value.path == str(raw_nrrd)


def test_zero_space_direction(tmp_path):
    path = tmp_path / "flat.nrrd"
    directions = np.diag([1.0, 0.0, 1.0])
    nrrd.write(
        str(path), np.zeros((2, 3, 4), np.int16), {"space": "LPS", "space directions": directions}
    )
    with pytest.raises(ImagingError, match="zero-length vector for axis 1") as info:
        read_nrrd(path)
    assert info.value.path == str(path)
    with pytest.raises(ImagingError, match="flat.nrrd"):
        read_seg_nrrd(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImagingError, match="does not exist"):
        read_nrrd(tmp_path / "nope.nrrd")
