"""The real TypeScript SDK (npm @restatedev/restate-sdk 1.17.2) registers and runs against the server."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import Server, free_port, wait_until

HERE = Path(__file__).resolve().parent / "ts"
MODULES = os.environ.get("TEST_TS_SDK_NODE_MODULES")
pytestmark = pytest.mark.skipif(
    not MODULES or shutil.which("node") is None,
    reason="@restatedev/restate-sdk not installed (set TEST_TS_SDK_NODE_MODULES)",
)


@pytest.fixture
def ts_service(tmp_path: Path) -> Iterator[str]:
    assert MODULES is not None
    port = free_port()
    work = tmp_path / "ts"
    work.mkdir()
    (work / "node_modules").symlink_to(MODULES)
    shutil.copy(HERE / "services.mjs", work / "services.mjs")
    log = (tmp_path / "ts.log").open("wb")
    proc = subprocess.Popen(
        ["node", "--import", str(HERE / "polyfill.mjs"), str(work / "services.mjs"), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=work,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        # listen() serves h2c only (HTTP/2 prior knowledge)
        with httpx.Client(http1=False, http2=True) as client:
            wait_until(lambda: client.get(f"{uri}/health", timeout=1).status_code == 200, timeout=30)
        yield uri
    finally:
        proc.terminate()
        proc.wait(10)


def test_typescript_service_runs(server: Server, ts_service: str) -> None:
    deployment = server.register(ts_service)
    assert {s["name"] for s in deployment["services"]} == {"TsGreeter", "TsCounter"}
    assert server.call("TsGreeter/greet", "Ada").json() == "Hello Ada from ts!"
    assert server.call("TsGreeter/nap", 150).json() == 150
    assert server.call("TsCounter/c/add", 2).json() == 2
    assert server.call("TsCounter/c/add", 3).json() == 5
