"""Label tables stored beside a label map: JSON, FreeSurfer LUT and ITK-SNAP text files.

A segmentation exported by a pipeline often carries its label names in a separate file.
These readers accept the forms research teams actually have:

* JSON: ``{"1": "liver"}``, ``{"1": {"name": "liver", "color": "#ff0000"}}``, a list of
  ``{"value": 1, "name": "liver", "color": [255, 0, 0]}``, and nnU-Net's ``dataset.json``
  (``{"labels": {"background": 0, "liver": 1}}``, or the older ``{"labels": {"0": ...}}``).
* FreeSurfer colour LUT text (``FreeSurferColorLUT.txt``): ``value name R G B A``.
* ITK-SNAP label description text: ``value R G B A visible mesh "name"``.

Where a file gives no colour, the stable palette of :mod:`portal.imaging.labels` is used.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from portal.imaging.errors import ImagingError
from portal.imaging.labels import Label, label_color

__all__ = ["find_label_table", "read_label_table", "sidecar_candidates"]

#: Sidecar files are small; anything larger is not a label table.
MAX_TABLE_BYTES = 4 * 1024 * 1024

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
# FreeSurfer's and ITK-SNAP's shared table names, looked up in the label map's folder.
FOLDER_TABLES = ("FreeSurferColorLUT.txt", "labels.json", "labels.txt", "dataset.json")
_OWN_SIDECARS = 4  # the first candidates of sidecar_candidates(): named after the map


def sidecar_candidates(label_path: str | os.PathLike[str], stem: str) -> list[Path]:
    """Files that may hold the label table of ``label_path``, most specific first.

    Parameters
    ----------
    label_path : str or os.PathLike
        The label map.
    stem : str
        Its name without the volume suffix (``case-label`` for ``case-label.nii.gz``).

    Returns
    -------
    list of pathlib.Path
        ``<stem>.json``, ``<stem>.txt``, ``<stem>.lut.txt``, ``<stem>_lut.txt`` beside
        it, then the folder-wide tables (:data:`FOLDER_TABLES`) in its folder and its
        parent folder (nnU-Net keeps ``dataset.json`` one level above ``labelsTr``).
    """
    folder = Path(label_path).parent
    own = [folder / f"{stem}{suffix}" for suffix in (".json", ".txt", ".lut.txt", "_lut.txt")]
    shared = [d / name for d in (folder, folder.parent) for name in FOLDER_TABLES]
    return own + shared


def find_label_table(label_path: str | os.PathLike[str], stem: str) -> tuple[Path, list[Label]]:
    """The first sidecar table of a label map that holds labels.

    Returns
    -------
    path, table
        The table file and its labels; ``(Path(), [])`` when there is none. A
        sidecar named after the label map that cannot be read raises, so a typo does
        not silently fall back to generated names; a folder-wide file that is not a
        label table is passed over.

    Raises
    ------
    ImagingError
        Naming the sidecar file and what is wrong with it.
    """
    candidates = sidecar_candidates(label_path, stem)
    for n, candidate in enumerate(candidates):
        if not candidate.is_file():
            continue
        try:
            table = read_label_table(candidate)
        except ImagingError:
            if n < _OWN_SIDECARS:
                raise
            continue  # a folder-wide dataset.json or labels.txt may be something else
        if table:
            return candidate, table
    return Path(), []


def _color(value: Any, default: tuple[int, int, int]) -> tuple[int, int, int]:
    if value is None:
        return default
    if isinstance(value, str):
        match = _HEX.match(value.strip())
        if not match:
            raise ValueError(f"colour {value!r} is not #rrggbb")
        code = match.group(1)
        return int(code[0:2], 16), int(code[2:4], 16), int(code[4:6], 16)
    channels = [float(c) for c in value][:3]
    if len(channels) != 3:
        raise ValueError(f"colour {value!r} needs three channels")
    if all(0.0 <= c <= 1.0 for c in channels) and any(0 < c < 1 for c in channels):
        channels = [c * 255.0 for c in channels]  # 0-1 floats (Slicer, matplotlib)
    if not all(0.0 <= c <= 255.0 for c in channels):
        raise ValueError(f"colour {value!r} is outside 0-255")
    r, g, b = (round(c) for c in channels)
    return r, g, b


def _label(value: Any, name: Any, color: Any = None) -> Label | None:
    number = int(value)
    if number == 0:
        return None  # background is never a label
    if not 1 <= number <= 65535:
        raise ValueError(f"label value {number} is outside 1-65535")
    return Label(
        number, str(name).strip()[:255] or f"label {number}", _color(color, label_color(number))
    )


def _from_mapping(items: Mapping[str, Any]) -> Iterable[Label | None]:
    for key, entry in items.items():
        if isinstance(entry, int) and not isinstance(entry, bool):
            yield _label(entry, key)  # nnU-Net v2: name -> value
        elif isinstance(entry, Mapping):
            yield _label(key, entry.get("name", ""), entry.get("color", entry.get("colour")))
        elif isinstance(entry, list) and entry and isinstance(entry[0], int):
            yield _label(entry[0], key)  # nnU-Net region labels: name -> [values]; first
        else:
            yield _label(key, entry)  # {"1": "liver"}


def _parse_json(text: str) -> list[Label | None]:
    data = json.loads(text)
    if isinstance(data, Mapping) and isinstance(data.get("labels"), Mapping | list):
        data = data["labels"]
    if isinstance(data, Mapping):
        return list(_from_mapping(data))
    if isinstance(data, list):
        return [
            _label(item["value"], item.get("name", ""), item.get("color", item.get("colour")))
            for item in data
        ]
    raise ValueError("expected an object or a list of labels")


def _parse_text(text: str) -> list[Label | None]:
    labels: list[Label | None] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            fields = shlex.split(line)
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from exc
        try:
            if '"' in line:  # ITK-SNAP: IDX R G B A VIS MSH "LABEL"
                labels.append(_label(fields[0], fields[-1], fields[1:4]))
            elif len(fields) >= 5:  # FreeSurfer: value name R G B A
                labels.append(_label(fields[0], fields[1], fields[2:5]))
            elif len(fields) >= 2:  # value name
                labels.append(_label(fields[0], " ".join(fields[1:])))
            else:
                raise ValueError("expected 'value name [R G B [A]]'")
        except (ValueError, IndexError) as exc:
            raise ValueError(f"line {number}: {exc}") from exc
    return labels


def read_label_table(path: str | os.PathLike[str]) -> list[Label]:
    """Read a label table file (JSON, FreeSurfer LUT or ITK-SNAP text).

    Parameters
    ----------
    path : str or os.PathLike
        The table file.

    Returns
    -------
    list of Label
        Sorted by value, background (0) left out; the last entry wins for a value
        listed twice.

    Raises
    ------
    ImagingError
        Naming the file: too large, not UTF-8, not a table, bad value or colour (with
        the line number for text files).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "lut.txt"
    >>> _ = path.write_text("0 Unknown 0 0 0 0\\n2 Left-WM 245 245 245 0\\n")
    >>> read_label_table(path)
    [Label(value=2, name='Left-WM', color=(245, 245, 245))]
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_TABLE_BYTES:
            raise ImagingError(path, f"label table is {size} bytes, more than {MAX_TABLE_BYTES}")
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImagingError(path, "label table is not UTF-8 text") from exc
    except OSError as exc:
        raise ImagingError(path, f"cannot read label table ({exc.strerror})") from exc
    try:
        parsed = _parse_json(text) if path.suffix.lower() == ".json" else _parse_text(text)
    except (ValueError, TypeError, KeyError) as exc:
        raise ImagingError(path, f"not a label table: {exc}") from exc
    by_value = {lab.value: lab for lab in parsed if lab is not None}
    return [by_value[v] for v in sorted(by_value)]
