"""Dependencies point inward: ui/api/web -> services -> db/imaging; no framework below."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "portal"
FORBIDDEN = {
    "imaging": {
        "dash",
        "dash_vtk",
        "dash_ag_grid",
        "flask",
        "flask_login",
        "sqlalchemy",
        "portal.db",
        "portal.services",
        "portal.ui",
        "portal.api",
        "portal.web",
    },
    "services": {
        "dash",
        "dash_vtk",
        "dash_ag_grid",
        "flask",
        "flask_login",
        "portal.ui",
        "portal.api",
        "portal.web",
    },
    "db": {
        "dash",
        "flask",
        "flask_login",
        "portal.services",
        "portal.ui",
        "portal.api",
        "portal.web",
        "portal.imaging",
    },
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_layers_do_not_import_outward() -> None:
    wrong = []
    for layer, banned in FORBIDDEN.items():
        for path in (PACKAGE / layer).rglob("*.py"):
            for name in _imports(path):
                if any(name == b or name.startswith(b + ".") for b in banned):
                    wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert wrong == []
