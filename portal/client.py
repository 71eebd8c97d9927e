"""A small Python client for the portal's REST API, for notebooks and pipelines.

It authenticates with a personal access token (``portal token create USER --name N
--scope review``) sent as ``Authorization: Bearer``; tokens are never put in URLs.

Examples
--------
>>> from portal.client import PortalClient
>>> client = PortalClient("https://portal.example.org", "ptk_...")  # doctest: +SKIP
>>> ids = [s["id"] for s in client.studies(project="brain", limit=9)]  # doctest: +SKIP
>>> client.open(ids, layout="3x3", state={"slice_mm": 12.0})  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import requests

__all__ = ["PortalClient", "PortalError"]


class PortalError(Exception):
    """The portal refused or failed a request.

    Attributes
    ----------
    status
        The HTTP status (0 if the server could not be reached).
    code
        A short name for the status, e.g. ``not_found``, ``forbidden``, ``invalid``.
    message
        The portal's explanation.
    """

    CODES = {
        400: "invalid",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        409: "conflict",
        413: "too_large",
    }

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        self.status = status
        self.code = code or self.CODES.get(status, "server_error" if status >= 500 else "error")
        self.message = message
        super().__init__(f"{status} {self.code}: {message}")


class PortalClient:
    """The portal's API at `base_url` (e.g. ``https://portal.example.org``) as one user.

    Parameters
    ----------
    base_url
        The portal's address, without ``/api/v1``.
    token
        A personal access token (``ptk_...``).
    timeout
        Seconds to wait for each response.
    """

    def __init__(self, base_url: str, token: str, timeout: float = 60.0) -> None:
        if not token.startswith("ptk_"):
            raise ValueError('Argument "token" must be a personal access token ("ptk_...")')
        self.api = base_url.rstrip("/") + "/api/v1"
        self.timeout = timeout
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Bearer {token}"
        self._http.headers["Accept"] = "application/json"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PortalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self._http.request(
                method, self.api + path, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.RequestException as exc:
            raise PortalError(0, f"cannot reach the portal: {exc}", "unreachable") from exc
        if response.status_code >= 400:
            try:
                message = str(response.json().get("error") or response.reason)
            except ValueError:
                message = response.reason or response.text[:200]
            raise PortalError(response.status_code, message)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def studies(self, **filters: str | int) -> list[dict[str, Any]]:
        """Studies visible to the token's user, as the case list filters them.

        Filters: ``q`` (search), ``modality``, ``status``, ``project``, ``queue``
        (mine, expert, overdue), ``offset``, ``limit`` (one page, default 50).
        """
        items: list[dict[str, Any]] = self._json("GET", "/studies", params=filters)["items"]
        return items

    def study(self, study_id: int) -> dict[str, Any]:
        """One study's details (segmentations, labels, versions)."""
        found: dict[str, Any] = self._json("GET", f"/studies/{study_id}")
        return found

    def review(self, study_id: int) -> dict[str, Any]:
        """A study's review items, reads and comments, as the user may see them."""
        found: dict[str, Any] = self._json("GET", f"/studies/{study_id}/review")
        return found

    def open(
        self,
        studies: Sequence[int],
        layout: str | None = None,
        state: dict[str, Any] | None = None,
        user_id: int | None = None,
    ) -> dict[str, Any]:
        """Make every open portal tab of a user show these studies within about 2 s.

        Parameters
        ----------
        studies
            Study ids (at most 48), each visible to that user.
        layout
            Rows x columns per page: ``1x1``, ``1x2``, ``2x2``, ``2x3``, ``3x3``, ``3x4``.
        state
            ``{"mode": "2d" | "3d", "slice_mm": z}``, z the RAS world z of the axial slice.
        user_id
            Another user's tabs (needs an administrator's token with the admin scope).

        Returns
        -------
        dict
            The queued command (its `id`, `studies`, `layout`, `state`).
        """
        body: dict[str, Any] = {"studies": [int(s) for s in studies]}
        if layout is not None:
            body["layout"] = layout
        if state is not None:
            body["state"] = state
        who = "me" if user_id is None else str(int(user_id))
        command: dict[str, Any] = self._json("POST", f"/sessions/{who}/open", json=body)
        return command

    def state(self) -> dict[str, Any] | None:
        """What the user's most recently reporting tab shows, or None."""
        found: dict[str, Any] | None = self._json("GET", "/sessions/me/state")["state"]
        return found

    def download_segmentation(
        self, segmentation_id: int, path: str | Path, format: str = "nifti"
    ) -> Path:
        """Save a segmentation's label map to `path` (``nifti`` .nii.gz or ``nrrd``)."""
        target = Path(path)
        response = self._request(
            "GET",
            f"/segmentations/{segmentation_id}/labels",
            params={"format": format},
            stream=True,
        )
        with response, target.open("wb") as out:
            for chunk in response.iter_content(1 << 20):
                out.write(chunk)
        return target

    def add_segmentation(
        self,
        study_id: int,
        path: str | Path,
        name: str = "",
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Add a label map to a study beside its segmentations (the study keeps its version).

        Parameters
        ----------
        study_id
            The study; the token's user must be a reader of its project.
        path
            A NIfTI, NRRD, MGH or DICOM SEG label map on the study's voxel grid.
        name
            Its name in the pane's segmentation chooser; empty: the file name's stem.
        idempotency_key
            Sent as ``Idempotency-Key``: a retry with the same key returns the same
            segmentation instead of adding another.

        Returns
        -------
        dict
            ``{id, study_id, name, labels: [{value, name, color, voxel_count, volume_ml}]}``.
        """
        source = Path(path)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        with source.open("rb") as handle:
            added: dict[str, Any] = self._json(
                "POST",
                f"/studies/{int(study_id)}/segmentations/attach",
                data={"name": name},
                files={"file": (source.name, handle, "application/octet-stream")},
                headers=headers,
            )
        return added

    def import_files(self, project: str, paths: Iterable[str | Path]) -> dict[str, Any]:
        """Upload files into `project` and queue their import; returns the import job.

        Folders are not walked: pass the files (a label map beside its image keeps its
        pairing by name).
        """
        files = [Path(p) for p in paths]
        if not files:
            raise ValueError('Argument "paths" must name at least one file')
        with ExitStack() as stack:
            parts = [
                ("files", (f.name, stack.enter_context(f.open("rb")), "application/octet-stream"))
                for f in files
            ]
            job: dict[str, Any] = self._json(
                "POST", "/imports", data={"project": project}, files=parts
            )
        return job

    def import_status(self, job_id: int) -> dict[str, Any]:
        """An import job and its status."""
        job: dict[str, Any] = self._json("GET", f"/imports/{job_id}")
        return job
