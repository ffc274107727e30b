"""The public API's OpenAPI document tells the truth: it lints clean (Redocly's recommended
rules), a typed client generated from it compiles (openapi-typescript + tsc), and
schemathesis finds no difference between it and the running gateway (all checks, stateful
phase included, 0 failures, no 5xx)."""

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from devstack.stack import Stack
from tests.helpers import create_org

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "tools" / "node"
BIN = NODE / "node_modules" / ".bin"
VENV_BIN = ROOT / ".venv" / "bin"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def spec_file(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The live gateway's /openapi.json, saved for the command-line tools."""
    spec = httpx.get(f"{stack.url()}/openapi.json", timeout=30).json()
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_text(json.dumps(spec))
    return path


def _run(args: list[str], timeout: float, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_every_operation_documents_its_problems(spec_file: Path) -> None:
    spec = json.loads(spec_file.read_text())
    assert spec["servers"] and spec["components"]["securitySchemes"].keys() == {
        "apiKey",
        "endUserToken",
    }
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    assert "/scim/v2/Users" in spec["paths"] and "/scim/v2/Schemas" in spec["paths"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")) and not path.startswith("/scim/"):
                    assert PROBLEM in response["content"], (method, path, status)
            if path.startswith("/v1/") and op.get("security") != []:
                assert {"401", "403", "429", "422"} <= op["responses"].keys(), (method, path)
    problem_422 = spec["paths"]["/v1/programs"]["post"]["responses"]["422"]
    assert problem_422["content"][PROBLEM]["schema"]["$ref"].endswith("/ValidationProblem")
    suggestions = spec["paths"]["/v1/programs/{program_id}/enrollments/{enrollment_id}/suggestions"]
    shape = suggestions["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    listed = spec["components"]["schemas"][shape["$ref"].rsplit("/", 1)[1]]
    assert {"items", "next_cursor"} <= listed["properties"].keys()


def test_openapi_lints_clean_with_redocly(spec_file: Path) -> None:
    result = _run([str(BIN / "redocly"), "lint", "--format=summary", str(spec_file)], 120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_typescript_client_compiles(spec_file: Path) -> None:
    generated = NODE / "client" / "api.d.ts"
    made = _run(
        [
            str(BIN / "openapi-typescript"),
            str(spec_file),
            "--output",
            str(generated),
            "--default-non-nullable",
            "false",
        ],
        120,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    compiled = _run([str(BIN / "tsc"), "-p", str(NODE)], 180)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr


async def test_schemathesis_finds_no_difference(
    stack: Stack, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    _, key = await create_org(api, admin)
    result = _run(
        [
            str(VENV_BIN / "schemathesis"),
            "--config-file",
            str(Path(__file__).parent / "schemathesis.toml"),
            "run",
            f"{stack.url()}/openapi.json",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--header",
            f"Authorization: {key['Authorization']}",
            # Revoking the run's own key would turn every later request into a 401; the
            # revocation is tested in tests/gateway.
            "--exclude-path",
            "/v1/api-keys/{key_id}",
            "--max-examples",
            "5",
            "--max-time",
            "120",
            "--seed",
            "20261202",
            "--workers",
            "1",
            # An id another service owns and has not projected yet is waited for (up to 10 s
            # on the test stack) before a 404: by contract, not a slow server.
            "--max-response-time",
            "25",
            "--request-timeout",
            "30",
            "--generation-database",
            "none",
            "--no-color",
        ],
        timeout=300,
    )
    # Non-zero on any failure (a 5xx included: `not_a_server_error` is one of the checks).
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
