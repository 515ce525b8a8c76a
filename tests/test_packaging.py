"""setup.cfg `packages = find:` ships only directories with __init__.py; the suite imports from the
checkout (pythonpath = .), so without this check a missing one would pass here and break installs."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "mappers", "adapters", "terminology", "conformance")


def test_every_code_directory_is_a_regular_package() -> None:
    missing = sorted(
        str(directory.relative_to(ROOT))
        for top in PACKAGES
        for directory in {p.parent for p in (ROOT / top).rglob("*.py")}
        if directory.name != "data" and not (directory / "__init__.py").is_file()
    )
    assert missing == []
