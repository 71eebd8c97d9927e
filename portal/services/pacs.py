"""Search a remote archive (Orthanc's REST API or any DICOMweb server) and fetch studies.

Fetched files land in an import job's staging folder and go through the normal import,
so a study from a PACS gets exactly the checks, versions and previews a local one gets.

Sources are configured by `PORTAL_PACS_SOURCES`: comma-separated `name=kind+url`, where
kind is `orthanc` or `dicomweb`; credentials, if any, go in the URL's user-info
(`https://user:password@host/...`) and are sent as HTTP basic auth, never logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db.models import ProjectMember, ProjectRole
from portal.services import audit
from portal.services.auth import Principal
from portal.services.errors import InvalidInput, NotFound, PermissionDenied

log = logging.getLogger(__name__)

TIMEOUT_S = 30
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_DATE = re.compile(r"^(\d{8})?(-(\d{8})?)?$")
# Query values go into a DICOM match; `*` and `?` are the only wildcards it knows.
_QUERY_TEXT = re.compile(r"^[\w\s.,'^*?-]*$", re.UNICODE)


class PacsError(RuntimeError):
    """The remote archive failed or answered something we cannot use (message is safe)."""


@dataclass(frozen=True)
class PacsSource:
    """One configured archive. `url` has no credentials; they are in `auth`."""

    name: str
    kind: str  # "orthanc" | "dicomweb"
    url: str
    auth: tuple[str, str] | None = None

    def session(self) -> requests.Session:
        s = requests.Session()
        if self.auth:
            s.auth = self.auth
        return s


def parse_sources(raw: str) -> dict[str, PacsSource]:
    """`"main=orthanc+http://u:p@host:8042, web=dicomweb+https://h/rs"` -> sources by name.

    Raises
    ------
    ValueError
        Naming the entry, for a malformed one (settings fail at start-up, not later).
    """
    sources: dict[str, PacsSource] = {}
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        name, sep, rest = entry.partition("=")
        kind, plus, url = rest.partition("+")
        name = name.strip()
        if not sep or not plus or kind not in ("orthanc", "dicomweb") or not name.isidentifier():
            raise ValueError(
                f"PORTAL_PACS_SOURCES entry {name or entry!r}: expected name=orthanc+URL or "
                "name=dicomweb+URL"
            )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"PORTAL_PACS_SOURCES entry {name!r}: URL must be http(s)://host")
        auth = None
        if parts.username is not None:
            auth = (unquote(parts.username), unquote(parts.password or ""))
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        clean = urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
        sources[name] = PacsSource(name=name, kind=kind, url=clean, auth=auth)
    return sources


def source_named(sources: dict[str, PacsSource], name: str) -> PacsSource:
    try:
        return sources[name]
    except KeyError:
        raise NotFound(f"no PACS source called {name!r}") from None


FILTER_FIELDS = ("patient_name", "patient_id", "study_date", "modality", "accession", "description")


@dataclass(frozen=True)
class StudyFilter:
    """What to search for; empty fields match anything. Dates are `YYYYMMDD[-YYYYMMDD]`."""

    patient_name: str = ""
    patient_id: str = ""
    study_date: str = ""
    modality: str = ""
    accession: str = ""
    description: str = ""

    def checked(self) -> StudyFilter:
        for field_name, value in vars(self).items():
            if len(value) > 64 or not _QUERY_TEXT.match(value):
                raise InvalidInput(f"{field_name}: letters, digits, spaces, * and ? only")
        if not _DATE.match(self.study_date):
            raise InvalidInput("study_date: YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
        return self


@dataclass(frozen=True)
class RemoteStudy:
    study_uid: str
    patient_name: str
    patient_id: str
    study_date: str
    description: str
    accession: str
    modalities: str
    series_count: int | None
    instance_count: int | None

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _dicom_query(f: StudyFilter) -> dict[str, str]:
    query = {
        "PatientName": f.patient_name,
        "PatientID": f.patient_id,
        "StudyDate": f.study_date,
        "ModalitiesInStudy": f.modality.upper(),
        "AccessionNumber": f.accession,
        "StudyDescription": f.description,
    }
    return {k: v for k, v in query.items() if v}


def _get(source: PacsSource, session: requests.Session, method: str, path: str, **kw: Any) -> Any:
    try:
        r = session.request(method, source.url + path, timeout=TIMEOUT_S, **kw)
    except requests.RequestException as exc:
        raise PacsError(f"{source.name}: cannot reach the archive ({type(exc).__name__})") from exc
    if r.status_code in (401, 403):
        raise PacsError(f"{source.name}: the archive refused our credentials")
    if not r.ok:
        raise PacsError(f"{source.name}: the archive answered HTTP {r.status_code} to {path}")
    return r


def search(source: PacsSource, where: StudyFilter, limit: int = 100) -> list[RemoteStudy]:
    """Studies on the archive matching `where`, at most `limit`, newest first."""
    where = where.checked()
    limit = max(1, min(limit, 500))
    with source.session() as s:
        if source.kind == "orthanc":
            found = _search_orthanc(source, s, where, limit)
        else:
            found = _search_dicomweb(source, s, where, limit)
    return sorted(found, key=lambda st: st.study_date, reverse=True)


def _search_orthanc(
    source: PacsSource, s: requests.Session, where: StudyFilter, limit: int
) -> list[RemoteStudy]:
    query = _dicom_query(where)
    body: dict[str, Any] = {"Level": "Study", "Query": query, "Expand": True, "Limit": limit}
    rows = _get(source, s, "POST", "/tools/find", json=body).json()
    out = []
    for row in rows:
        study = row.get("MainDicomTags", {})
        patient = row.get("PatientMainDicomTags", {})
        # Orthanc 1.10 (Debian 12) does not return ModalitiesInStudy from /tools/find.
        series = _get(source, s, "GET", f"/studies/{row['ID']}/series").json()
        modalities = sorted({x.get("MainDicomTags", {}).get("Modality", "") for x in series})
        out.append(
            RemoteStudy(
                study_uid=study.get("StudyInstanceUID", ""),
                patient_name=patient.get("PatientName", ""),
                patient_id=patient.get("PatientID", ""),
                study_date=study.get("StudyDate", ""),
                description=study.get("StudyDescription", ""),
                accession=study.get("AccessionNumber", ""),
                modalities="\\".join(m for m in modalities if m),
                series_count=len(series),
                instance_count=sum(len(x.get("Instances", [])) for x in series),
            )
        )
    return out


def _tag(ds: dict[str, Any], tag: str) -> str:
    value = ds.get(tag, {}).get("Value", [])
    if not value:
        return ""
    first = value[0]
    if isinstance(first, dict):  # PN: {"Alphabetic": "..."}
        return str(first.get("Alphabetic", ""))
    return "\\".join(str(v) for v in value) if len(value) > 1 else str(first)


def _int_tag(ds: dict[str, Any], tag: str) -> int | None:
    text = _tag(ds, tag)
    return int(text) if text.isdigit() else None


def _search_dicomweb(
    source: PacsSource, s: requests.Session, where: StudyFilter, limit: int
) -> list[RemoteStudy]:
    # Plain QIDO-RS rather than dicomweb-client's search: it percent-encodes the `*`
    # wildcard, which Orthanc's DICOMweb plugin then matches literally.
    params = [
        *_dicom_query(where).items(),
        ("includefield", "StudyDescription"),
        ("includefield", "ModalitiesInStudy"),
        ("includefield", "NumberOfStudyRelatedSeries"),
        ("includefield", "NumberOfStudyRelatedInstances"),
        ("limit", str(limit)),
    ]
    r = _get(
        source,
        s,
        "GET",
        "/studies?" + urlencode(params, safe="*"),
        headers={"Accept": "application/dicom+json"},
    )
    rows = r.json() if r.content else []
    return [
        RemoteStudy(
            study_uid=_tag(ds, "0020000D"),
            patient_name=_tag(ds, "00100010"),
            patient_id=_tag(ds, "00100020"),
            study_date=_tag(ds, "00080020"),
            description=_tag(ds, "00081030"),
            accession=_tag(ds, "00080050"),
            modalities=_tag(ds, "00080061"),
            series_count=_int_tag(ds, "00201206"),
            instance_count=_int_tag(ds, "00201208"),
        )
        for ds in rows
    ]


def check_uid(uid: str) -> str:
    uid = uid.strip()
    if not _UID.match(uid) or len(uid) > 64:
        raise InvalidInput(f"{uid[:70]!r} is not a DICOM UID")
    return uid


def fetch_study(source: PacsSource, study_uid: str, dest: Path, max_bytes: int) -> list[Path]:
    """Download every instance of a study into `dest` (created); return the files.

    Stops with PacsError when the study exceeds `max_bytes`, leaving what it wrote for
    the caller to remove with the staging folder.
    """
    study_uid = check_uid(study_uid)
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    total = 0
    with source.session() as s:
        chunks = (
            _orthanc_instances(source, s, study_uid)
            if source.kind == "orthanc"
            else _dicomweb_instances(source, s, study_uid)
        )
        for index, data in enumerate(chunks):
            total += len(data)
            if total > max_bytes:
                raise PacsError(
                    f"{source.name}: study {study_uid} is larger than the import limit "
                    f"({max_bytes // 1024**2} MB)"
                )
            path = dest / f"{index:06d}.dcm"
            path.write_bytes(data)
            written.append(path)
    if not written:
        raise PacsError(f"{source.name}: study {study_uid} has no instances")
    log.info("fetched %d files (%d bytes) from %s", len(written), total, source.name)
    return written


def _orthanc_instances(source: PacsSource, s: requests.Session, study_uid: str) -> Iterator[bytes]:
    found = _get(source, s, "POST", "/tools/lookup", data=study_uid).json()
    ids = [row["ID"] for row in found if row.get("Type") == "Study"]
    if not ids:
        raise NotFound(f"{source.name}: no study {study_uid}")
    for instance in _get(source, s, "GET", f"/studies/{ids[0]}/instances").json():
        yield _get(source, s, "GET", f"/instances/{instance['ID']}/file").content


def _dicomweb_instances(source: PacsSource, s: requests.Session, study_uid: str) -> Iterator[bytes]:
    from io import BytesIO

    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(url=source.url, session=s)
    try:
        series = client.search_for_series(study_instance_uid=study_uid)
        if not series:
            raise NotFound(f"{source.name}: no study {study_uid}")
        for row in series:
            series_uid = _tag(row, "0020000E")
            for ds in client.iter_series(study_uid, series_uid):
                buffer = BytesIO()
                ds.save_as(buffer, enforce_file_format=True)
                yield buffer.getvalue()
    except requests.RequestException as exc:
        raise PacsError(f"{source.name}: WADO-RS retrieve failed ({type(exc).__name__})") from exc


def may_search(session: Session, principal: Principal) -> None:
    """Admins, and users who read or lead in some project, may search the archives.

    Search results carry patient names from outside the portal's projects, so viewers
    (and users in no project) are refused.
    """
    if principal.is_admin:
        return
    roles = set(
        session.scalars(
            select(ProjectMember.role).where(ProjectMember.user_id == principal.user_id)
        )
    )
    if not roles - {ProjectRole.VIEWER.value}:
        raise PermissionDenied("searching the PACS needs a reviewer, expert or lead role")


def search_audited(
    session: Session,
    principal: Principal,
    sources_setting: str,
    source_name: str,
    where: StudyFilter,
    limit: int = 100,
) -> list[RemoteStudy]:
    """Check `principal` may search, search the named source, and audit the search.

    The audit row names the fields used, never their values (they are often a
    patient's name or ID).
    """
    source = source_named(parse_sources(sources_setting), source_name)
    may_search(session, principal)
    found = search(source, where, limit)
    used = ",".join(k for k, v in vars(where).items() if v) or "none"
    audit.record(
        session,
        principal.user_id,
        "pacs.search",
        f"pacs:{source.name}",
        f"fields={used} results={len(found)}",
        role=principal.role.value,
    )
    return found
