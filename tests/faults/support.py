"""What the fault tests drive through the gateway while something breaks."""

import httpx

from tests.profiles.test_employees import employee


async def sync_new_employees(
    api: httpx.AsyncClient, key: dict[str, str], prefix: str, start: int, count: int
) -> None:
    """One bulk request of `count` employees never seen before (`<prefix>-<n>`, n from
    `start`): every record must come back `created`."""
    records = [
        {"external_id": f"{prefix}-{i:05}", **employee(email=f"{prefix.lower()}{i}@example.com")}
        for i in range(start, start + count)
    ]
    answer = await api.post(
        "/v1/employees/bulk", json={"employees": records}, headers=key, timeout=60
    )
    assert answer.status_code == 200, answer.text
    assert {r["status"] for r in answer.json()["results"]} == {"created"}
