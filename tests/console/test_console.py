"""The reference console (services/gateway/console, served at /console) in headless
Debian Chromium, driven by Playwright against a seeded program through the session stack:
sign in (a wrong key shows the API's problem title), open a program, page and search its
enrollments, run a cohort matching run with a pin and a fairness floor, watch it finish,
apply it, explain one mentee's suggestions, and render every chart with its table and CSV
download. Screenshots are saved under pytest's tmp dir (printed); with
MENTORBUS_UPDATE_CONSOLE_SCREENSHOTS=1 they are also copied to docs/console/ for the
README."""

import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from devstack.stack import Stack
from services.gateway.console.spec import public_openapi
from tests.feedback.program import Program, start_program
from tests.helpers import TokenIssuer, eventually
from tests.matchmaking import create_program, enrol, put_employee

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
CHARTS = ["funnel", "sessions", "satisfaction", "goals", "outcomes"]
WAIT_MS = 30_000


@asynccontextmanager
async def chromium_page() -> AsyncIterator[Page]:
    """A page of Debian's headless Chromium (Playwright never downloads a browser here)."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 1280, "height": 900}, accept_downloads=True
            )
            page = await context.new_page()
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            await browser.close()


async def _seed(api: httpx.AsyncClient, key: dict[str, str]) -> Program:
    """A program (started in January) with one active match that met once (rated 5),
    checked in low (at risk) and set two goals (one done), and mentees left for a
    matching run."""
    program = await start_program(
        api, key, mentors=["M-1", "M-2", "M-3"], mentees=["E-1", "E-2", "E-3", "E-4"],
        pairs=[("E-1", "M-1")],
    )  # fmt: skip
    match_id = program.matches["E-1"]["id"]
    started = await api.patch(
        f"/v1/programs/{program.id}", json={"starts_on": "2026-01-05"}, headers=key
    )
    assert started.status_code == 200, started.text

    async def low_check_in() -> httpx.Response | None:
        # A low check-in puts the match on the at-risk list; the feedback service may
        # still see the match as proposed for a moment (409 meanwhile).
        answer = await api.post(
            f"/v1/matches/{match_id}/check-ins",
            json={"employee_external_id": "E-1", "rating": 1, "comment": "stuck"},
            headers=key,
        )
        assert answer.status_code in {201, 409}, answer.text
        return answer if answer.status_code == 201 else None

    await eventually(low_check_in)
    starts = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
    booked = await api.post(
        "/v1/sessions",
        json={"match_id": match_id, "starts_at": starts, "duration_minutes": 45},
        headers=key,
    )
    assert booked.status_code == 201, booked.text
    done = await api.post(f"/v1/sessions/{booked.json()['id']}/complete", headers=key)
    assert done.status_code == 200, done.text

    async def request_of_e1() -> str | None:
        answer = await api.get("/v1/feedback-requests", params={"employee": "E-1"}, headers=key)
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return str(items[0]["id"]) if items else None

    rated = await api.post(
        "/v1/feedback", json={"request_id": await eventually(request_of_e1), "rating": 5},
        headers=key,
    )  # fmt: skip
    assert rated.status_code == 201, rated.text
    for title in ("Lead a design review", "Ship a feature"):
        goal = await api.post("/v1/goals", json={"match_id": match_id, "title": title}, headers=key)
        assert goal.status_code == 201, goal.text
    finished = await api.patch(
        f"/v1/goals/{goal.json()['id']}", json={"status": "completed"}, headers=key
    )
    assert finished.status_code == 200, finished.text
    return program


async def _charts_drawn(page: Page) -> None:
    for chart in CHARTS:
        figure = page.locator(f"figure[data-chart={chart}]")
        await expect(figure.locator("canvas")).to_be_visible(timeout=WAIT_MS)
        # Chart.js has drawn: some pixel of the canvas is not transparent.
        drawn = await figure.locator("canvas").evaluate(
            """c => {
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                for (let i = 3; i < d.length; i += 4) if (d[i]) return true;
                return false;
            }"""
        )
        assert drawn, chart
        await figure.get_by_role("button", name="Show table").click()
        assert await figure.locator("tbody tr").count() >= 1, chart


async def test_console_runs_a_program_end_to_end(
    stack: Stack,
    api: httpx.AsyncClient,
    org: tuple[str, dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    _, key = org
    program = await _seed(api, key)
    token = key["Authorization"].removeprefix("Bearer ")
    shots = tmp_path_factory.mktemp("console-screenshots")
    print(f"console screenshots: {shots}")
    base = stack.url()

    # The types of the console are generated from this document: it is the live one.
    live = (await api.get("/openapi.json")).json()
    live.pop("servers")
    assert json.loads(json.dumps(public_openapi())) == live

    async with chromium_page() as page:
        urls: list[str] = []
        page.on("request", lambda request: urls.append(request.url))

        # A wrong key: the API's problem+json title is shown, and we stay signed out.
        await page.goto(f"{base}/console")
        await page.get_by_label("API key or token").fill("mbk_not-a-key")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("401")
        await page.get_by_label("API key or token").fill(token)
        await page.get_by_role("button", name="Sign in").press("Enter")
        assert token not in page.url

        await page.get_by_role("link", name="Grow").click()
        await expect(page.get_by_role("heading", name="Grow")).to_be_focused()
        rows = page.locator("#enrollments tbody tr")
        await expect(rows).to_have_count(7)
        await page.get_by_label("Search this page").fill("M-")
        await expect(rows).to_have_count(3)
        await page.get_by_label("Search this page").fill("")
        # Paging follows next_cursor: 7 enrollments are 5 + 2 at 5 per page.
        await page.get_by_label("Per page").select_option("5")
        await expect(rows).to_have_count(5)
        await page.get_by_role("button", name="Next page").click()
        await expect(rows).to_have_count(2)
        await expect(page.get_by_role("button", name="Next page")).to_be_disabled()
        await page.get_by_role("button", name="First page").click()
        await expect(rows).to_have_count(5)
        await page.get_by_label("Per page").select_option("20")
        await page.get_by_label("Role").select_option("mentee")
        await expect(rows).to_have_count(4)
        await page.screenshot(path=shots / "enrollments.png", full_page=True)

        # A cohort run: a pin and a fairness floor, progress to the end, then apply.
        await page.get_by_role("link", name="Matching").click()
        await page.get_by_label("Objective").select_option("max_participation")
        await page.get_by_label("Fairness floor").fill("0.1")
        await page.get_by_label("Mentee", exact=True).first.select_option(label="E-2")
        await page.get_by_label("Mentor", exact=True).select_option(label="M-2")
        await page.get_by_role("button", name="Pin this pair").click()
        await page.get_by_role("button", name="Launch run").click()
        apply = page.locator("#apply")
        await expect(apply).to_be_enabled(timeout=60_000)
        assert await page.locator("#run-progress").evaluate("p => p.value") == 1
        proposals = page.locator(".proposals > li")
        assert await proposals.count() >= 1
        await expect(proposals.filter(has_text="E-2 ↔ M-2 ")).to_contain_text("pinned")
        assert await proposals.first.locator(".breakdown li").count() >= 1
        await page.screenshot(path=shots / "matching-run.png", full_page=True)
        await apply.click()
        await expect(page.locator("#applied")).to_contain_text("Applied:")
        await page.get_by_label("Mentee", exact=True).last.select_option(label="E-3")
        await page.get_by_role("button", name="Explain suggestions").click()
        await expect(page.locator("#suggestions .breakdown").first).to_be_visible()

        # Evidence: every chart drawn, with its table; the CSV comes from the API.
        await page.get_by_role("link", name="Evidence").click()
        await _charts_drawn(page)
        funnel = page.locator("#funnel-table")
        await expect(funnel.locator("tr", has_text="Sessions held")).to_contain_text("1")
        goals = page.locator("#goals-table tbody tr")
        await expect(goals).to_contain_text("2")
        async with page.expect_download() as download_info:
            await (
                page.locator("figure[data-chart=outcomes]")
                .get_by_role("button", name="Download CSV")
                .click()
            )
        download = await download_info.value
        csv_path = shots / "outcomes.csv"
        await download.save_as(csv_path)
        assert csv_path.read_text().count("\n") > 1
        await page.screenshot(path=shots / "evidence.png", full_page=True)
        async with page.expect_download() as analytics_info:
            await (
                page.locator("figure[data-chart=funnel]")
                .get_by_role("button", name="Download CSV")
                .click()
            )
        analytics_csv = shots / "analytics.csv"
        await (await analytics_info.value).save_as(analytics_csv)
        assert analytics_csv.read_text().splitlines()[0] == "figure,month,value"
        risk = page.locator("#at-risk > li")
        await expect(risk).to_have_count(1)
        await risk.get_by_role("link", name="E-1 ↔ M-1").click()
        # Keyboard: each view focuses its heading; Tab and Enter go on from there.
        await expect(page.get_by_role("heading", name="Match E-1 ↔ M-1")).to_be_focused()
        await page.keyboard.press("Tab")
        back = page.get_by_role("link", name="Back to the program")
        await expect(back).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(page.locator("figure[data-chart=goals] canvas")).to_be_visible()

        # Every asset and call went to the gateway itself (no CDN).
        assert urls and all(u.startswith((base, "blob:")) for u in urls), urls
        assert program.id in page.url
    if os.environ.get("MENTORBUS_UPDATE_CONSOLE_SCREENSHOTS") == "1":
        # The README's pictures: refreshed on request only, so the suite leaves the tree clean.
        docs = ROOT / "docs" / "console"
        docs.mkdir(parents=True, exist_ok=True)
        for shot in shots.glob("*.png"):
            shutil.copy(shot, docs / shot.name)


async def test_a_member_signs_in_with_a_token_and_sees_only_theirs(
    stack: Stack,
    api: httpx.AsyncClient,
    org: tuple[str, dict[str, str]],
    identity_provider: TokenIssuer,
) -> None:
    org_id, key = org
    program_id = await create_program(api, key)
    for person in ("U-1", "U-2"):
        await put_employee(api, key, person)
    await enrol(api, key, program_id, "U-1", "mentee")
    await enrol(api, key, program_id, "U-2", "mentor")
    token = identity_provider.token(org_id, "U-1")

    async with chromium_page() as page:
        await page.goto(f"{stack.url()}/console/")
        await page.get_by_label("API key or token").fill(token)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="Programs")).to_be_visible()
        await page.locator(f"a[href='#/programs/{program_id}']").click()
        # The API shows a member their own enrollment only.
        rows = page.locator("#enrollments tbody tr")
        await expect(rows).to_have_count(1)
        await expect(rows).to_contain_text("U-1")
        assert await page.evaluate("sessionStorage.getItem('mentorbus.token')") == token
        assert token not in page.url
        # A cohort run is an admin's: the API's 403 problem is shown as title and detail.
        await page.get_by_role("link", name="Matching").click()
        await page.get_by_role("button", name="Launch run").click()
        await expect(page.get_by_role("alert")).to_contain_text("(403)")
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_label("API key or token")).to_be_visible()
        assert await page.evaluate("sessionStorage.getItem('mentorbus.token')") is None
