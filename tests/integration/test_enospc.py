"""A full disk: requests fail visibly while it lasts, and every acknowledged invocation completes once
space is back, without a restart (issue 7.5).

The server's data directory is a small tmpfs that a filler file fills up while calls and sends run;
then the tmpfs is grown (`mount -o remount,size=…`). Needs root for `mount`, as CI has.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import Sdk, Server, wait_until

KEYS = [f"k{i}" for i in range(8)]
REQUESTS = 300  # bounded load: calls and sends on 8 object keys, fan-out calls across partitions, and
BIG = "x" * 256 * 1024  # sends of 256 KiB (journaled twice): enough to fill the stores' memtables
FILL_AFTER = 60  # responses before the disk fills up, so that acknowledged work is in flight
CONCURRENCY = 16


@contextlib.contextmanager
def _tmpfs(mount: Path, size: str) -> Iterator[Path]:
    mount.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _grow(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=512m", str(mount)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with _tmpfs(tmp_path / "disk", "64m") as mount:
        yield mount


def _fill(path: Path) -> None:
    """Write zeros until the file system is full (the server's own writes may have filled it already)."""
    try:
        with path.open("wb") as filler:
            while filler.write(b"\0" * 65536):
                filler.flush()
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise


def _request(server: Server, n: int) -> httpx.Response:
    key = KEYS[n % len(KEYS)]
    match n % 4:
        case 0:
            return server.call(f"Counter/{key}/add", 1, timeout=180)
        case 1:
            return server.call(f"Counter/{key}/add/send", 1, timeout=180)
        case 2:
            return server.call("Greeter/greet/send", BIG, timeout=180)
        case _:
            return server.call("Caller/add_to_many", KEYS[:3], timeout=180)


def _is_json_5xx(resp: httpx.Response) -> bool:
    return (
        resp.status_code >= 500
        and resp.headers.get("content-type", "").startswith("application/json")
        and "message" in resp.json()
    )


def test_full_disk_fails_requests_visibly_and_recovers_without_restart(
    tmp_path: Path, small_disk: Path, sdk: Sdk
) -> None:
    server = Server(base_dir=small_disk / "data", log_path=tmp_path / "server.log")
    server.start()
    try:
        server.register(sdk.uri)
        first = server.call(f"Counter/{KEYS[0]}/add", 0)
        assert first.status_code == 200
        with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
            results = [pool.submit(_request, server, n) for n in range(REQUESTS)]
            wait_until(lambda: sum(r.done() for r in results) >= FILL_AFTER, timeout=120)
            _fill(small_disk / "filler")
            # while the disk is full: the ingress and the admin API answer JSON errors, nothing hangs
            wait_until(lambda: _is_json_5xx(server.call(f"Counter/{KEYS[1]}/add/send", 1, timeout=30)), 60)
            admin = httpx.patch(
                f"{server.admin}/invocations/{first.headers['x-restate-id']}/kill", timeout=30
            )
            assert _is_json_5xx(admin), (admin.status_code, admin.text)
            assert httpx.get(f"{server.admin}/health", timeout=10).status_code == 200
            # the disk stays full until every send was answered (calls wait for their invocations)
            sends = [r for n, r in enumerate(results) if n % 4 in (1, 2)]
            concurrent.futures.wait(sends, timeout=120)
            _grow(small_disk)
            responses = [r.result(timeout=240) for r in results]
        _assert_recovered(server, responses)
        assert "log write failed: IO error: No space left on device" in server.log_path.read_text()
    finally:
        server.stop()


def test_full_partition_store_stalls_processing_until_space_is_back(tmp_path: Path, sdk: Sdk) -> None:
    """Only the partition store's disk is full: appends land, commits fail and are retried."""
    server = Server(base_dir=tmp_path / "data", log_path=tmp_path / "server.log")
    with _tmpfs(tmp_path / "data" / "n1" / "db", "24m") as store_disk:
        server.start()
        try:
            server.register(sdk.uri)
            with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
                results = [pool.submit(_request, server, n) for n in range(REQUESTS)]
                _fill(store_disk / "filler")
                # the store's memtable fills up, its flush fails, and RocksDB refuses writes
                wait_until(lambda: "to the partition store failed" in server.log_path.read_text(), 120)
                _grow(store_disk)
                responses = [r.result(timeout=240) for r in results]
            _assert_recovered(server, responses)
            assert "the partition store accepts writes again" in server.log_path.read_text()
        finally:
            server.stop()


def _assert_recovered(server: Server, responses: list[httpx.Response]) -> None:
    """Every request failed visibly or succeeded, and everything acknowledged completed in place."""
    for resp in responses:
        assert resp.status_code in (200, 202) or _is_json_5xx(resp), (resp.status_code, resp.text)
    acknowledged = [r for r in responses if r.status_code in (200, 202)]
    assert acknowledged, "no request got through"
    # every acknowledged invocation completes, without a restart
    wait_until(
        lambda: not server.query("SELECT id FROM sys_invocation WHERE status != 'completed'"), timeout=120
    )
    # and no key is left locked: one more call on each key answers at once
    for key in KEYS:
        resp = server.call(f"Counter/{key}/add", 0, timeout=30)
        assert resp.status_code == 200, resp.text
    assert server.proc is not None
    assert server.proc.poll() is None
    accepted = sum(1 for r in acknowledged if r.status_code == 202)
    assert server.query("SELECT count(*) AS n FROM sys_invocation")[0]["n"] >= accepted
    print(json.dumps({"acknowledged": len(acknowledged), "failed": len(responses) - len(acknowledged)}))
