"""The test kubelet's main loop: informers feed one level-based reconcile of controllers, pods, network.

Run it as ``python -m e2e.kubelet --server URL --workdir DIR [--ready-file F]``. Every watch event
wakes the loop, which also runs twice a second; each round reconciles the StatefulSet and ReplicaSet
controllers, then the pod processes, then Endpoints, ClusterIP proxies and the hosts map. SIGTERM
stops every pod process before exiting; pod processes also die with the kubelet (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
from pathlib import Path

from . import controllers, podspec
from .api import CONFIGMAPS, PODS, PVCS, REPLICASETS, SECRETS, SERVICES, STATEFULSETS, Api, Informer
from .network import IpPool, Network
from .node import NodeServer
from .runtime import Runtime, RuntimeSettings

logger = logging.getLogger(__name__)

RESYNC = 0.5
"""Seconds between reconcile rounds when no event arrives."""
SHIM_SOURCE = Path(__file__).with_name("podnet.c")


def build_shim(workdir: Path) -> Path:
    """Compile ``podnet.c`` (cached by content hash) into an LD_PRELOAD library."""
    source = SHIM_SOURCE.read_bytes()
    target = workdir / f"podnet-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if not target.exists():
        tmp = target.with_suffix(".tmp")
        subprocess.run(
            ["gcc", "-O2", "-shared", "-fPIC", "-o", str(tmp), str(SHIM_SOURCE), "-ldl"], check=True
        )
        tmp.rename(target)
    return target


class Kubelet:
    def __init__(self, api: Api, settings: RuntimeSettings, pool: IpPool) -> None:
        self.api = api
        self.wake = asyncio.Event()
        self.informers = {
            res: Informer(api, res, self.wake.set)
            for res in (PODS, SERVICES, CONFIGMAPS, SECRETS, PVCS, STATEFULSETS, REPLICASETS)
        }
        self.pool = pool
        self.network = Network(api, settings.hosts_file)
        self.runtime = Runtime(api, settings, self.sources, pool.allocate, pool.release)
        self.expectations = controllers.Expectations()
        self.node = NodeServer(api, pool.prefix + "1", self.runtime.log_path)

    def sources(self, namespace: str) -> podspec.Sources:
        cms = {
            o["metadata"]["name"]: dict(o.get("data") or {})
            for o in self.informers[CONFIGMAPS].values()
            if o["metadata"].get("namespace") == namespace
        }
        secrets = {
            o["metadata"]["name"]: podspec.decode_secret(o)
            for o in self.informers[SECRETS].values()
            if o["metadata"].get("namespace") == namespace
        }
        return podspec.Sources(configmaps=cms, secrets=secrets)

    async def reconcile(self) -> None:
        pods = self.informers[PODS].values()
        pvcs = set(self.informers[PVCS].objects)
        for sts in self.informers[STATEFULSETS].values():
            ns_pods = [p for p in pods if p["metadata"]["namespace"] == sts["metadata"]["namespace"]]
            await controllers.reconcile_statefulset(self.api, sts, ns_pods, pvcs)
        for rs in self.informers[REPLICASETS].values():
            ns_pods = [p for p in pods if p["metadata"]["namespace"] == rs["metadata"]["namespace"]]
            await controllers.reconcile_replicaset(self.api, rs, ns_pods, self.expectations)
        self.runtime.sync(pods)
        await self.network.sync(pods, self.informers[SERVICES].values())

    async def run(self, ready_file: Path | None) -> None:
        tasks = [asyncio.create_task(i.run(), name=f"informer-{r.plural}") for r, i in self.informers.items()]
        try:
            await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in self.informers.values())), 30)
            await self.node.start()
            if ready_file is not None:
                tmp = ready_file.with_suffix(".tmp")
                tmp.write_text(
                    json.dumps({"hosts_file": str(self.network.hosts_file), "pod_prefix": self.pool.prefix})
                )
                tmp.rename(ready_file)
            logger.info("kubelet ready: pods on %s0/24", self.pool.prefix)
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), RESYNC)
                self.wake.clear()
                try:
                    await self.reconcile()
                except Exception:
                    logger.exception("reconcile round failed")
        finally:
            for task in tasks:
                task.cancel()
            await self.runtime.shutdown()
            await self.node.stop()
            await self.network.close()
            await self.api.close()


async def _main(
    settings: RuntimeSettings, server: str, pod_prefix: str | None, ready_file: Path | None
) -> None:
    kubelet = Kubelet(Api(server), settings, IpPool(pod_prefix))
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: main_task.cancel() if main_task else None)
    with contextlib.suppress(asyncio.CancelledError):
        await kubelet.run(ready_file)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kubelet", description=__doc__)
    parser.add_argument("--server", required=True, help="API server URL, e.g. http://127.0.0.1:PORT")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--hosts-file", type=Path)
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument("--pod-prefix", help="pod IPs are <prefix>2..254, e.g. 127.0.42. (default: random)")
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="working directory of pod processes")
    parser.add_argument("--pythonpath", default=str(Path.cwd()), help="PYTHONPATH of pod processes")
    parser.add_argument("--probe-period-cap", type=float, default=0.5)
    parser.add_argument("--grace-cap", type=float, default=10.0)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    settings = RuntimeSettings(
        workdir=workdir,
        shim=build_shim(workdir),
        hosts_file=(args.hosts_file or workdir / "hosts").resolve(),
        cwd=args.cwd.resolve(),
        pythonpath=args.pythonpath,
        probe_period_cap=args.probe_period_cap,
        grace_cap=args.grace_cap,
    )
    asyncio.run(_main(settings, args.server, args.pod_prefix, args.ready_file))
    os._exit(0)  # leftover executor threads must not keep a stopped kubelet alive
