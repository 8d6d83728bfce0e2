"""A real 3-member etcd cluster on loopback, for the etcd providers' tests and cluster integration tests.

Members get free ports on 127.0.0.1 and their own data directory; start-up is bounded; members are
stopped at teardown and their logs are printed when a test failed. ``kill(i)`` SIGKILLs one member
and ``restart(i)`` brings it back on the same data, for fault tests. Tests share one session-scoped
cluster and keep apart by using their own key prefix (:func:`unique_prefix`).

Without an etcd binary the tests are skipped, except under ``CI=true`` where that is a failure.
The binary is ``$ETCD_BIN``, else ``etcd`` on ``PATH`` (Debian: ``apt-get install etcd-server``; 3.4
runs the tests, use 3.5+ in production).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ports import free_port

START_TIMEOUT = 30.0  # seconds for a member (or the cluster) to report healthy


def etcd_binary() -> str:
    """The etcd binary, or skip (fail under CI=true) when there is none."""
    binary = os.environ.get("ETCD_BIN") or shutil.which("etcd") or "/usr/bin/etcd"
    if not os.access(binary, os.X_OK):
        message = f"etcd binary not found ({binary}); install Debian's etcd-server or set ETCD_BIN"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


def unique_prefix() -> bytes:
    """A key prefix no other test uses."""
    return f"/t-{uuid.uuid4().hex[:12]}".encode()


@dataclass
class Member:
    name: str
    data_dir: Path
    log_path: Path
    host: str = "127.0.0.1"
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"


class EtcdCluster:
    def __init__(self, root: Path, size: int = 3, host: str = "127.0.0.1") -> None:
        """``host``: the address members listen on (a private bridge's, in network partition tests)."""
        self.binary = etcd_binary()
        self.members = [Member(f"m{i}", root / f"m{i}", root / f"m{i}.log", host) for i in range(size)]
        self._initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def start(self) -> None:
        for index in range(len(self.members)):
            self._spawn(index)
        for member in self.members:
            self._wait_healthy(member)

    def _spawn(self, index: int) -> None:
        member = self.members[index]
        url = f"http://{member.endpoint}"
        args = [
            self.binary,
            f"--name={member.name}",
            f"--data-dir={member.data_dir}",
            f"--listen-client-urls={url}",
            f"--advertise-client-urls={url}",
            f"--listen-peer-urls={member.peer_url}",
            f"--initial-advertise-peer-urls={member.peer_url}",
            f"--initial-cluster={self._initial}",
            "--initial-cluster-state=new",
            "--initial-cluster-token=restate-py-tests",
            "--heartbeat-interval=100",
            "--election-timeout=1000",
            "--logger=zap",
        ]
        log = member.log_path.open("ab")
        member.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def _wait_healthy(self, member: Member) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert member.proc is not None
            if member.proc.poll() is not None:
                raise RuntimeError(f"etcd {member.name} exited:\n{self.logs()}")
            try:
                with urllib.request.urlopen(f"http://{member.endpoint}/health", timeout=1) as resp:
                    if json.loads(resp.read()).get("health") == "true":
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"etcd {member.name} not healthy within {START_TIMEOUT}s:\n{self.logs()}")

    def leader(self) -> int:
        """Index of the member that is the raft leader now."""
        for member in self.members:
            if member.proc is None or member.proc.poll() is not None:
                continue
            request = urllib.request.Request(
                f"http://{member.endpoint}/v3/maintenance/status", data=b"{}", method="POST"
            )
            with urllib.request.urlopen(request, timeout=2) as resp:
                status = json.loads(resp.read())
            leader_id = status["leader"]
            if status["header"]["member_id"] == leader_id:
                return self.members.index(member)
        raise RuntimeError("no live member is the leader")

    def kill(self, index: int) -> None:
        """SIGKILL one member (its data stays)."""
        proc = self.members[index].proc
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def restart(self, index: int) -> None:
        self._spawn(index)
        self._wait_healthy(self.members[index])

    def stop(self) -> None:
        for member in self.members:
            if member.proc is not None and member.proc.poll() is None:
                member.proc.kill()  # the data is thrown away: no need for a graceful stop
        for member in self.members:
            if member.proc is not None:
                try:
                    member.proc.wait(10)
                except subprocess.TimeoutExpired:
                    member.proc.kill()
                    member.proc.wait()

    def logs(self) -> str:
        return "\n".join(
            f"--- {m.name} ---\n{m.log_path.read_text(errors='replace')[-4000:]}"
            for m in self.members
            if m.log_path.exists()
        )


@pytest.fixture(scope="session")
def etcd_cluster(request: pytest.FixtureRequest) -> Iterator[EtcdCluster]:
    root = Path(tempfile.mkdtemp(prefix="etcd-"))
    cluster = EtcdCluster(root)
    failed_before = request.session.testsfailed
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        if request.session.testsfailed > failed_before:
            sys.stderr.write(cluster.logs())
        shutil.rmtree(root, ignore_errors=True)
