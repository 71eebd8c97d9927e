"""The one exception type raised for bad imaging input.

Every reader in :mod:`portal.imaging` turns the many ways a file can be wrong
(missing, truncated, not an image, unsupported dtype, too large, label grid
that does not match its image, ...) into :class:`ImagingError`, so callers
at the boundary (importer, API, CLI) need to catch only one type and can show
the message as it is: it always names the file and the reason.
"""

from __future__ import annotations

import os

__all__ = ["ImagingError", "exception_text"]

#: Longest library message quoted in a reason.
_MAX_QUOTED_CHARS = 300


class ImagingError(Exception):
    """An image or label file could not be used.

    Parameters
    ----------
    path : str or os.PathLike
        The file (or folder) at fault.
    reason : str
        What is wrong with it, in words a user can act on.

    Examples
    --------
    >>> err = ImagingError("/data/a.nii.gz", "complex voxel data is not supported")
    >>> str(err)
    '/data/a.nii.gz: complex voxel data is not supported'
    >>> err.path, err.reason
    ('/data/a.nii.gz', 'complex voxel data is not supported')
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path: str = os.fspath(path)
        self.reason: str = reason
        super().__init__(self.path, reason)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def exception_text(exc: BaseException, path: str | os.PathLike[str]) -> str:
    """A library exception as one short line to quote in a reason.

    The file's folder is left out wherever the message repeats its path (folder
    names are server-internal and can hold patient names); line breaks are
    joined and the text is cut at 300 characters.

    Examples
    --------
    >>> exception_text(OSError("Empty file: '/uploads/Doe_Jane/a.nii'"), "/uploads/Doe_Jane/a.nii")
    "Empty file: 'a.nii'"
    """
    text = str(exc) or type(exc).__name__
    full = os.fspath(path)
    name = os.path.basename(full)
    for variant in sorted({full, os.path.abspath(full), os.path.realpath(full)}, key=len)[::-1]:
        text = text.replace(variant, name)
    folder = os.path.dirname(os.path.abspath(full))
    if len(folder) > 1:
        text = text.replace(folder + os.sep, "")
    text = " ".join(text.split())
    if len(text) > _MAX_QUOTED_CHARS:
        text = text[: _MAX_QUOTED_CHARS - 1] + "…"
    return text
