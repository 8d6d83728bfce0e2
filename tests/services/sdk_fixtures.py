"""Run the shared SDK services as a real process for a test (import the fixtures into a conftest).

``sdk_service_factory(variant=…, identity_keys=…)`` starts ``serve.py`` under hypercorn on a free
127.0.0.1 port, waits until its ``/health`` answers, and stops it (SIGTERM, then SIGKILL) at teardown,
printing its output if it died early. ``sdk_service`` is the default one;
``sdk_service_any_transport`` runs a test once over h2c and once over HTTP/1.1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from ports import free_port

SERVE = Path(__file__).resolve().parent / "serve.py"
START_DEADLINE = 20.0
STOP_DEADLINE = 5.0


@dataclass
class SdkService:
    """A running SDK endpoint."""

    port: int
    process: subprocess.Popen[bytes]
    variant: str = ""
    identity_keys: list[str] = field(default_factory=list)
    use_http_11: bool = False
    """How to register it: the same process answers h2c (bidi) and HTTP/1.1 (request/response)."""

    @property
    def uri(self) -> str:
        """The deployment URI to register."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a deadline."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_sdk_service(
    *, variant: str = "", identity_keys: list[str] | None = None, port: int | None = None
) -> SdkService:
    """Start the services process and wait until it answers (on ``port``, to replace a stopped one)."""
    port = port or free_port()
    cmd = [sys.executable, str(SERVE), "--port", str(port)]
    if variant:
        cmd += ["--variant", variant]
    for key in identity_keys or []:
        cmd += ["--identity-key", key]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    service = SdkService(port=port, process=proc, variant=variant, identity_keys=list(identity_keys or []))
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"SDK service exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(f"{service.uri}/health", timeout=1.0).status_code == 200:
                return service
        except httpx.HTTPError:
            time.sleep(0.05)
    service.stop()
    raise RuntimeError(f"SDK service on port {port} did not become healthy in {START_DEADLINE}s")


SdkServiceFactory = Callable[..., SdkService]


@pytest.fixture
def sdk_service_factory() -> Iterator[SdkServiceFactory]:
    """Start SDK service processes on demand; all are stopped at teardown."""
    started: list[SdkService] = []

    def factory(
        *, variant: str = "", identity_keys: list[str] | None = None, port: int | None = None
    ) -> SdkService:
        service = start_sdk_service(variant=variant, identity_keys=identity_keys, port=port)
        started.append(service)
        return service

    yield factory
    for service in started:
        service.stop()


@pytest.fixture
def sdk_service(sdk_service_factory: SdkServiceFactory) -> SdkService:
    """The default SDK services, running."""
    return sdk_service_factory()


@pytest.fixture(params=[False, True], ids=["h2c", "http1"])
def sdk_service_any_transport(
    request: pytest.FixtureRequest, sdk_service_factory: SdkServiceFactory
) -> SdkService:
    """The default SDK services, once per transport; register with ``use_http_11=service.use_http_11``."""
    service = sdk_service_factory()
    service.use_http_11 = bool(request.param)
    return service
