import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.pixels import apply_modality_lut
from pydicom.uid import MPEG2MPML

from portal.imaging.errors import ImagingError
from tests.support.dicom_data import read_one_series as _read
from tests.support.dicom_data import testdata as _testdata


@pytest.mark.parametrize(
    "name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"]
)
def test_lossless_mr_small_equals_uncompressed(name):
    reference = _read(_testdata("MR_small.dcm"))
    vol = _read(_testdata(name))
    ds = pydicom.dcmread(_testdata(name))
    assert ds.file_meta.TransferSyntaxUID.is_compressed
    assert vol.shape == reference.shape == (64, 64, 1)
    np.testing.assert_array_equal(vol.data, reference.data)
    np.testing.assert_array_equal(vol.affine_ras, reference.affine_ras)
    source = pydicom.dcmread(_testdata("MR_small.dcm"))
    expected = apply_modality_lut(source.pixel_array, source)
    np.testing.assert_array_equal(vol.data[:, :, 0], expected.T)


@pytest.mark.parametrize("name", ["image_dfl.dcm", "JPEG-LL.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm"])
def test_deflate_and_jpeg_lossless_match_simpleitk(name):
    path = _testdata(name)
    vol = _read(path)
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    expected = image[0] if image.ndim == 3 else image  # (row, column)
    assert vol.shape == (expected.shape[1], expected.shape[0], 1)
    np.testing.assert_array_equal(vol.data[:, :, 0], expected.T)


def test_unsupported_transfer_syntax_names_file_and_syntax(tmp_path):
    ds = pydicom.dcmread(_testdata("MR_small_RLE.dcm"))
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    path = tmp_path / "video.dcm"
    ds.save_as(path)
    with pytest.raises(ImagingError, match="MPEG2 Main Profile / Main Level") as info:
        _read(path)
    assert info.value.path == str(path)
    assert MPEG2MPML in info.value.reason


def test_undecodable_12_bit_jpeg_is_refused():
    # 12-bit JPEG Extended: neither pylibjpeg nor Pillow decodes this file.
    path = _testdata("JPEG-lossy.dcm")
    with pytest.raises(ImagingError, match="JPEG Extended") as info:
        _read(path)
    assert info.value.path == str(path)
