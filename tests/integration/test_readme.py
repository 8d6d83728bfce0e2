"""The README's walk-through, run as written: the example service, its curl lines, and stopping it.

The curl lines are taken from README.md itself (ports swapped for free ones), so the README cannot
drift from what works; they must not use flags newer than curl 7.81 (Ubuntu 22.04's).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import PYTHON, Server, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLE = ROOT / "examples" / "greeter" / "service.py"
# flags curl 7.81 does not have
_NEWER_FLAGS = ("--json", "--url-query", "--variable", "--expand-")


def readme_curl_lines() -> list[str]:
    """The curl lines of the single-node walk-through ("Try it"); the cluster section needs etcd."""
    walkthrough = README.read_text().split("## Try it", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in walkthrough.splitlines() if line.startswith("curl ")]


@pytest.fixture
def example(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    log = (tmp_path / "example.log").open("wb")
    proc = subprocess.Popen(
        [PYTHON, str(EXAMPLE)], env={**os.environ, "PORT": str(port)}, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/discover", timeout=1).status_code in (200, 415)
        )
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_readme_curl_lines_work_against_the_example(
    server: Server, example: tuple[subprocess.Popen[bytes], int]
) -> None:
    proc, port = example
    lines = readme_curl_lines()
    assert len(lines) >= 5
    outputs = []
    for line in lines:
        assert not any(flag in line for flag in _NEWER_FLAGS), line
        line = (
            line.replace("localhost:8080", f"127.0.0.1:{server.ingress_port}")
            .replace("localhost:9070", f"127.0.0.1:{server.admin_port}")
            .replace("127.0.0.1:9080", f"127.0.0.1:{port}")
        )
        done = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, (line, done.stderr)
        outputs.append(done.stdout)
    register, greet, add, get, send, query = outputs[:6]
    assert '"Greeter"' in register
    assert greet == '"Hello, Sarah!"'
    assert add == "5"
    assert get == "5"
    assert re.search(r'"invocationId":"inv_1\w+"', send)
    assert "Greeter/greet" in query

    proc.send_signal(signal.SIGTERM)  # the README says the example stops on SIGTERM
    assert proc.wait(timeout=15) == 0


def test_readme_links_stay_inside_the_repository() -> None:
    text = README.read_text()
    assert not re.findall(r"\]\((?!#|[\w./-]+\))", text), "a markdown link that leaves the repository"
    assert "https://" not in text
