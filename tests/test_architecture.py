"""Data flows one way: tracker connector → core model → mapping → invoices/ledger → target.

No module imports against that flow. The sync engine, the factory and the CLI are the
composition root and may import everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# module (or package prefix) → what it may import from this project
ALLOWED: dict[str, set[str]] = {
    "core.model": set(),
    "core.money": set(),
    "core.periods": set(),
    "core.errors": set(),
    "mapping": {"core.model", "mapping"},
    "core.invoices": {"core.model", "core.money", "core.periods", "mapping"},
    # every connector: the contracts, the registry, the canonical model and shared plumbing
    "connectors": {
        "connectors.base",
        "connectors.credentials",
        "connectors.fields",
        "connectors.registry",
        "core.model",
        "core.money",
        "core.errors",
        "core.http",
        "core.invoices",
        "core.periods",
        "mapping",
    },
    "connectors.base": {"core.model", "core.invoices", "mapping", "core.periods", "core.money"},
    "connectors.registry": {"core.http"},
    # the web console sits at the CLI's level: it composes core, mapping, connectors and the
    # scheduler, and nothing below imports it (core.cli only wires its command)
    "console": {"console", "core", "connectors", "mapping", "scheduler"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from connectors import fields` imports the module connectors.fields
            package = ROOT.joinpath(*node.module.split("."))
            for alias in node.names:
                sub = package / alias.name
                is_module = sub.with_suffix(".py").is_file() or (sub / "__init__.py").is_file()
                found.add(f"{node.module}.{alias.name}" if is_module else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    ours = {"core", "connectors", "mapping", "sandbox", "scheduler", "console"}
    return {m for m in found if m.split(".")[0] in ours}


def _rule(module: str) -> set[str] | None:
    best = max(
        (k for k in ALLOWED if module == k or module.startswith(k + ".")), key=len, default=None
    )
    return None if best is None else ALLOWED[best]


def test_no_module_imports_against_the_flow() -> None:
    violations = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] not in {"core", "connectors", "mapping", "console"}:
            continue
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        allowed = _rule(module)
        if allowed is None:
            continue
        own = ".".join(module.split(".")[:2])  # a connector may import its own package
        for imported in _imports(path):
            if imported == own or imported.startswith(own + "."):
                continue
            if not any(imported == a or imported.startswith(a + ".") for a in allowed):
                violations.append(f"{module} imports {imported}")
    assert violations == []


def test_the_checker_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("from core.sync import SyncEngine\n", encoding="utf-8")
    assert _imports(bad) == {"core.sync"}
    allowed = _rule("mapping.resolver")
    assert allowed is not None and "core.sync" not in allowed


def test_only_the_cli_imports_the_console() -> None:
    importers = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {"console", "tests", ".venv"}:
            continue
        if any(m == "console" or m.startswith("console.") for m in _imports(path)):
            importers.append(str(rel))
    assert importers == ["core/cli.py"]
