import pickle
from pathlib import Path

import pytest

from portal.imaging.errors import ImagingError


def test_message_names_file_and_reason():
    err = ImagingError(Path("/data/x.nii.gz"), "complex voxel data is not supported")
    assert err.path == "/data/x.nii.gz"
    assert err.reason == "complex voxel data is not supported"
    assert str(err) == "/data/x.nii.gz: complex voxel data is not supported"


def test_is_an_exception_that_survives_pickling():
    with pytest.raises(ImagingError) as info:
        raise ImagingError("a.dcm", "bad")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.path, copy.reason, str(copy)) == ("a.dcm", "bad", "a.dcm: bad")
