"""Which package may import what: read from the source, so a new import that breaks the layering
fails here rather than as an import cycle at run time."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tr2m_cli"


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, names imported from it) for every import in `path`, lazy ones included."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append((module, [alias.name for alias in node.names]))
    return found


def test_model_only_builds_modules_and_never_imports_weights():
    offenders = [
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in sorted((PACKAGE / "model").rglob("*.py"))
        for module, _ in imports(path)
        if module.startswith("tr2m_cli.weights")
    ]
    assert not offenders


def test_no_package_imports_another_packages_private_names():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = path.relative_to(PACKAGE).parts[0]
        for module, names in imports(path):
            parts = module.split(".")
            if parts[0] != "tr2m_cli" or len(parts) < 2 or parts[1] == own:
                continue
            offenders += [f"{path.relative_to(PACKAGE)}: {module}.{n}" for n in names if n.startswith("_") and n != "__version__"]
    assert not offenders
