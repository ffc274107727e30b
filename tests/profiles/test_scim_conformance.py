"""A real SCIM conformance checker (scim2-tester) against the live service, through the
gateway, with an organization's API key: discovery, CRUD, attribute projection and PATCH
add/replace/remove on every attribute of User (with the enterprise extension) and Group."""

import asyncio
from collections import Counter

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

from devstack.stack import Stack

FAILING = {Status.ERROR, Status.CRITICAL}


def _run_checker(base_url: str, headers: dict[str, str]) -> list[CheckResult]:
    with httpx2.Client(base_url=base_url, headers=headers, timeout=30) as http:
        return check_server(SyncSCIMClient(http))


async def test_scim2_tester_finds_no_failure(stack: Stack, org: tuple[str, dict[str, str]]) -> None:
    _, key = org
    # The checker is synchronous: keep it off the event loop other fixtures share.
    results = await asyncio.to_thread(_run_checker, f"{stack.url()}/scim/v2", key)
    # Shown with `pytest -s`: what ran, and why anything was skipped.
    print("scim2-tester:", dict(Counter(r.status.name for r in results)))
    for r in results:
        if r.status not in (Status.SUCCESS, *FAILING):
            print(f"  {r.status.name} {r.resource_type} {r.title}: {r.reason}")
    failures = [r for r in results if r.status in FAILING]
    assert not failures, "\n".join(f"{r.resource_type} {r.title}: {r.reason}" for r in failures)
    succeeded = [r for r in results if r.status == Status.SUCCESS]
    titles = {r.title for r in succeeded}
    # The run really exercised the protocol, not only discovery.
    assert {"object_creation", "object_replacement", "object_deletion"} <= titles
    assert {"check_add_attribute", "check_replace_attribute", "check_remove_attribute"} <= titles
    assert {r.resource_type for r in succeeded} >= {"User", "Group"}
    assert len(succeeded) > 100
