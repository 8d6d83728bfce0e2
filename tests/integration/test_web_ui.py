"""The web UI at `/ui/` on the admin port, loaded in a real headless chromium after real SDK traffic."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from browser import Browser, executable
from harness import Sdk, Server

pytestmark = pytest.mark.skipif(
    executable() is None, reason="chromium is not installed (apt-get install chromium)"
)

ROWS = "JSON.stringify([...document.querySelectorAll('#{table} tbody tr')].map(r => [...r.cells].map(c => c.textContent)))"


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    chromium = Browser(tmp_path / "profile", tmp_path / "chromium.log")
    try:
        await chromium.open()
        yield chromium
    finally:
        await chromium.close()


def _rows(raw: str) -> list[list[str]]:
    return [list(map(str, row)) for row in json.loads(raw)]


@pytest.mark.parametrize("deployed", ["h2c"], indirect=True)
async def test_ui_shows_services_deployments_invocations_and_state(
    deployed: Server, sdk: Sdk, browser: Browser
) -> None:
    assert deployed.call("Counter/ui-key/add", 7).json() == 7
    greeted = deployed.call("Greeter/greet", "<b>ui</b>")
    invocation_id = greeted.headers["x-restate-id"]

    await browser.navigate(f"{deployed.admin}/")  # upstream's redirect from / to /ui/
    await browser.wait_for("document.getElementById('status')?.textContent.startsWith('updated')")
    assert await browser.evaluate("location.pathname") == "/ui/"

    services = _rows(await browser.evaluate(ROWS.format(table="services")))
    by_name = {row[0]: row for row in services}
    assert {"Greeter", "Counter"} <= set(by_name)
    assert by_name["Counter"][1] == "VirtualObject"
    assert "greet" in by_name["Greeter"][2].split(", ")

    deployments = _rows(await browser.evaluate(ROWS.format(table="deployments")))
    assert [row[1].rstrip("/") for row in deployments] == [sdk.uri]
    assert "Greeter" in deployments[0][2]

    invocations = _rows(await browser.evaluate(ROWS.format(table="invocations")))
    assert [invocation_id, "Greeter/greet", "completed"] in [row[:3] for row in invocations]

    state = _rows(await browser.evaluate(ROWS.format(table="state")))
    assert ["Counter", "ui-key", "count", "7"] in state

    # text from services is shown as text: no element was made from the greeting's markup
    assert await browser.evaluate("document.querySelectorAll('main b').length") == 0


def test_ui_assets_are_served_with_a_strict_content_security_policy(server: Server) -> None:
    page = httpx.get(f"{server.admin}/ui/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert (
        httpx.get(f"{server.admin}/ui/app.js", timeout=10)
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert httpx.get(f"{server.admin}/ui/nope.js", timeout=10).status_code == 404
    redirect = httpx.get(f"{server.admin}/ui", timeout=10)
    assert (redirect.status_code, redirect.headers["location"]) == (308, "/ui/")


def test_disable_web_ui_removes_it(tmp_path: Path) -> None:
    server = Server(
        base_dir=tmp_path / "data",
        log_path=tmp_path / "server.log",
        env={"RESTATE_ADMIN__DISABLE_WEB_UI": "true"},
    )
    server.start()
    try:
        assert httpx.get(f"{server.admin}/ui/", timeout=10).status_code == 404
        assert httpx.get(f"{server.admin}/health", timeout=10).status_code == 200
    finally:
        server.stop()
