"""The one exception type raised for bad imaging input.

Every reader in :mod:`portal.imaging` turns the many ways a file can be wrong
(missing, truncated, not an image, unsupported dtype, too large, label grid
that does not match its image, ...) into :class:`ImagingError`, so callers
at the boundary (importer, API, CLI) need to catch only one type and can show
the message as it is: it always names the file and the reason.
"""

from __future__ import annotations

import os

__all__ = ["ImagingError"]


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
