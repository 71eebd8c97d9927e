import os
import stat
import struct
import zipfile

import pytest

from portal.imaging.archive import extract_zip
from portal.imaging.errors import ImagingError

LIMITS = {"max_total_bytes": 10_000_000, "max_files": 20}


def _zip(path, entries, compression=zipfile.ZIP_DEFLATED):
    """Write ``entries`` (ZipInfo or name -> bytes) into a new archive."""
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def _refused(tmp_path, archive, match, **limits):
    dest = tmp_path / "out"
    with pytest.raises(ImagingError, match=match) as info:
        extract_zip(archive, dest, **{**LIMITS, **limits})
    assert info.value.path == str(archive)
    # Nothing stays behind: neither the target nor the staging folder.
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [archive.name]
    return info.value


def test_extracts_files_and_folders(tmp_path):
    folder = zipfile.ZipInfo("study/")
    folder.external_attr = (stat.S_IFDIR | 0o755) << 16
    archive = _zip(
        tmp_path / "ok.zip",
        [(folder, b""), ("study/a.nii", os.urandom(5000)), ("study/sub/b.dcm", b"x" * 100)],
    )
    files = extract_zip(archive, tmp_path / "out", **LIMITS)
    assert [f.relative_to(tmp_path / "out").as_posix() for f in files] == [
        "study/a.nii",
        "study/sub/b.dcm",
    ]
    assert files[1].read_bytes() == b"x" * 100
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_existing_empty_dest_is_used_but_not_a_full_one(tmp_path):
    archive = _zip(tmp_path / "ok.zip", [("a.txt", b"hello")])
    (tmp_path / "out").mkdir()
    (files,) = extract_zip(archive, tmp_path / "out", **LIMITS)
    assert files.read_bytes() == b"hello"
    with pytest.raises(ValueError, match='Argument "dest"'):
        extract_zip(archive, tmp_path / "out", **LIMITS)


@pytest.mark.parametrize("name", ["/etc/passwd", "\\windows\\evil.dll", "C:/evil.txt"])
def test_absolute_paths_are_refused(tmp_path, name):
    archive = _zip(tmp_path / "abs.zip", [("fine.txt", b"ok"), (name, b"bad")])
    err = _refused(tmp_path, archive, "absolute path")
    assert repr(name) in err.reason


@pytest.mark.parametrize("name", ["../escape.txt", "a/../../escape.txt", "a\\..\\..\\x"])
def test_parent_components_are_refused(tmp_path, name):
    archive = _zip(tmp_path / "dotdot.zip", [(name, b"bad")])
    err = _refused(tmp_path, archive, r"'\.\.' path component")
    assert repr(name) in err.reason


def test_symlinks_are_refused(tmp_path):
    link = zipfile.ZipInfo("study/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = _zip(tmp_path / "link.zip", [("study/a.txt", b"ok"), (link, b"/etc/passwd")])
    _refused(tmp_path, archive, "'study/link' is a symbolic link")


def test_too_many_entries(tmp_path):
    archive = _zip(tmp_path / "many.zip", [(f"f{n}.txt", b"x") for n in range(6)])
    _refused(
        tmp_path, archive, r"6 entries, more than the limit of 5 \(entry 'f5.txt'", max_files=5
    )


def test_declared_total_too_large(tmp_path):
    archive = _zip(tmp_path / "big.zip", [("a.bin", os.urandom(600)), ("b.bin", os.urandom(600))])
    _refused(tmp_path, archive, "limit of 1000 bytes at entry 'b.bin'", max_total_bytes=1000)


def test_zip_bomb_ratio(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", [("zeros.raw", bytes(5_000_000))])
    _refused(tmp_path, archive, "entry 'zeros.raw' expands .* times .*zip bomb")
    # The same archive is fine when the caller allows the ratio.
    files = extract_zip(archive, tmp_path / "out", **LIMITS, max_ratio=10_000)
    assert files[0].stat().st_size == 5_000_000


def _forge_uncompressed_size(archive, new_size: int) -> None:
    """Make the local and central headers of the one entry claim ``new_size`` bytes."""
    raw = bytearray(archive.read_bytes())
    local = raw.index(b"PK\x03\x04")
    central = raw.index(b"PK\x01\x02")
    struct.pack_into("<I", raw, local + 22, new_size)
    struct.pack_into("<I", raw, central + 24, new_size)
    archive.write_bytes(bytes(raw))


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_more_data_than_declared_is_refused(tmp_path, compression):
    archive = _zip(tmp_path / "liar.zip", [("scan.dcm", os.urandom(50_000))], compression)
    _forge_uncompressed_size(archive, 1_000)
    # Declared 1000 bytes passes the ratio and size checks; the data does not.
    with zipfile.ZipFile(archive) as zf:
        assert zf.infolist()[0].file_size == 1_000
    _refused(tmp_path, archive, "entry 'scan.dcm'", max_ratio=1000)


def test_not_a_zip(tmp_path):
    path = tmp_path / "x.zip"
    path.write_bytes(b"PK but not really")
    _refused(tmp_path, path, "not a readable ZIP archive")
