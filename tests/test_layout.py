"""The architecture, checked: services share only `shared/`, and only `shared/kafka.py`
touches the Kafka client."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("profiles", "matching", "sessions", "feedback", "gateway")
SHAPE = ("app.py", "api.py", "schemas.py", "models.py", "events.py", "settings.py")


def _parse(path: Path) -> ast.Module:
    # CPython 3.11 keeps the AST constructor's recursion counter per interpreter, not per
    # thread (gh-106905): with other tests' client threads still winding down, a parse can
    # fail spuriously with SystemError. The source is the same on a second try.
    for _ in range(2):
        try:
            return ast.parse(path.read_text(), filename=str(path))
        except SystemError:
            continue
    return ast.parse(path.read_text(), filename=str(path))


def imported_modules(path: Path) -> set[str]:
    tree = _parse(path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_service_imports_no_other_service(service: str) -> None:
    for path in (ROOT / "services" / service).rglob("*.py"):
        for module in imported_modules(path):
            if module.startswith("services."):
                assert module.split(".")[1] == service, f"{path} imports {module}"


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_shape(service: str) -> None:
    directory = ROOT / "services" / service
    missing = [name for name in SHAPE if not (directory / name).exists()]
    assert not missing, f"{service} lacks {missing}"
    assert list((directory / "migrations").glob("*.sql")), f"{service} has no migrations"


def test_shared_imports_no_service_and_only_kafka_py_imports_kafka() -> None:
    for path in (ROOT / "shared").rglob("*.py"):
        modules = imported_modules(path)
        assert not any(m.startswith("services") for m in modules), path
        if path.name != "kafka.py":
            assert not any(m == "kafka" or m.startswith("kafka.") for m in modules), path
    for path in (ROOT / "services").rglob("*.py"):
        assert not any(m.startswith("kafka") for m in imported_modules(path)), path
