"""Tests share helpers through ``tests/support`` only: a test module importing another test module (or conftest)
runs that module's tests' imports and fixtures where nobody looks for them, and ties two test files together."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
SHARED = "tests.support"

# Being moved to tests/support by the work on tests/integration/test_departments.py; remove when that lands.
PENDING = {("integration/test_survivor_evolution.py", "tests.integration.test_departments")}


def imported_modules(source: str, where: Path) -> set[str]:
    """Every module ``source`` imports, relative imports resolved as if it lived at ``where`` (under tests/)."""
    package = ("tests", *where.parent.parts)
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, filename=str(where))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join((*base, *(node.module.split(".") if node.module else ())))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names if not node.module)
    return found


def reaches_into_tests(module: str) -> bool:
    return (module == "tests" or module.startswith("tests.")) and not (
        module == SHARED or module.startswith(SHARED + ".")
    )


def test_no_test_module_imports_another_test_module_or_conftest() -> None:
    offenders = sorted(
        f"{path.relative_to(TESTS)} imports {module}"
        for path in TESTS.rglob("*.py")
        if SHARED.split(".")[1] not in path.relative_to(TESTS).parts[:1]
        for module in imported_modules(path.read_text(), path.relative_to(TESTS))
        if reaches_into_tests(module) and (str(path.relative_to(TESTS)), module) not in PENDING
    )
    assert not offenders, "move shared helpers to tests/support: " + "; ".join(offenders)


def test_the_check_sees_absolute_and_relative_imports() -> None:
    """Guards the parser: both spellings of a cross-test import are caught, support imports are not."""
    assert reaches_into_tests("tests.integration.test_outbox")
    assert reaches_into_tests("tests.conftest")
    assert not reaches_into_tests("tests.support.factories")
    source = "from .test_outbox import outbox_target\nfrom . import conftest\nimport tests.e2e.test_operators\n"
    modules = imported_modules(source, Path("integration/test_sample.py"))
    assert {"tests.integration.test_outbox", "tests.integration.conftest", "tests.e2e.test_operators"} <= modules
