"""``python -m bench``: run the benchmark against each server in turn and write ``bench/RESULTS.md``.

Meant to be started by ``bench/run.sh``, which installs upstream's binary and enters a private
network namespace first. This entry point refuses to run while a non-loopback interface is visible,
because upstream's binary tries to reach the internet when it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import aggregate, charts, model, procs, profile, report, runner

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK = BENCH_DIR / ".work"
UPSTREAM_BIN = WORK / "node_modules/@restatedev/restate-server-linux-x64/bin/restate-server"
OURS_BIN = REPO / ".venv/bin/restate-py-server"

log = logging.getLogger("bench")


def _interfaces() -> list[str]:
    """Network interfaces of this process's namespace (``/proc/net/dev`` is per namespace)."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return [line.split(":", 1)[0].strip() for line in lines]


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({type(e).__name__})"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[-1] if out.returncode == 0 and text else f"--version exited {out.returncode}"


def _ours_version() -> str:
    """HEAD of the repository, marked when the working tree (what actually runs) differs from it."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty=+uncommitted"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        rev = ""
    return f"git {rev or '?'}"


class Services:
    """The two SDK processes (h2c and HTTP/1.1 deployments), shared by every server under test."""

    def __init__(self, port: int, python: str, tag: str) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports = [port, port + 1]
        for offset, (mode, prefix, _o, _x) in enumerate(runner.MODES):
            log_file = (WORK / f"services-{tag}-{mode}.log").open("wb")
            self.procs.append(
                subprocess.Popen(
                    [python, "-m", "bench.services", "--port", str(port + offset), "--prefix", prefix],
                    cwd=REPO,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    def wait_ready(self, deadline_s: float = 30.0) -> bool:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if all(procs.http_ok(f"http://127.0.0.1:{p}/health") for p in self.ports):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        # SIGINT, not SIGTERM: the SDK replaces hypercorn's SIGTERM handler with its own, which only
        # notifies open invocations, so SIGTERM alone never stops the process.
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s per scenario (about 2 minutes)")
    parser.add_argument("--servers", default="ours,upstream", help="comma-separated subset of ours,upstream")
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds per scenario (default 10, quick 2)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the servers this many times, alternating; report medians"
    )
    parser.add_argument("--max-ops", type=int, default=100_000, help="operations per scenario at most")
    parser.add_argument("--only", default="", help="comma-separated substrings: run only matching scenarios")
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "RESULTS.md")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite RESULTS.md from RESULTS.json (the last run) without running anything",
    )
    parser.add_argument("--no-write", action="store_true", help="print the table, do not touch RESULTS.md")
    parser.add_argument("--upstream-bin", type=Path, default=UPSTREAM_BIN)
    parser.add_argument("--ours-bin", type=Path, default=OURS_BIN)
    parser.add_argument("--service-port", type=int, default=9080)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample our server with py-spy during each scenario into bench/.work/profiles (skews figures)",
    )
    parser.add_argument(
        "--no-idempotency-keys",
        action="store_true",
        help="send calls without idempotency-key (upstream still makes one up and retains every call)",
    )
    parser.add_argument(
        "--allow-network",
        action="store_true",
        help="run even though non-loopback interfaces are visible (not recommended)",
    )
    return parser.parse_args(argv)


def server_specs(args: argparse.Namespace) -> dict[str, tuple[procs.ServerSpec, str]]:
    ports = procs.Ports()
    specs = {
        report.OURS: (
            procs.ServerSpec(name=report.OURS, argv=[str(args.ours_bin)], ports=ports),
            _ours_version(),
        ),
        report.UPSTREAM: (
            procs.ServerSpec(
                name=report.UPSTREAM,
                argv=[str(args.upstream_bin), "--node-name", "bench", "--no-logo"],
                ports=ports,
                extra_env={"RESTATE_LOG_FORMAT": "compact"},
            ),
            _version([str(args.upstream_bin)]),
        ),
    }
    return {name: specs[name] for name in args.servers.split(",") if name in specs}


async def run_all(args: argparse.Namespace, options: model.Options) -> dict[str, list[model.ServerResult]]:
    """Each server in turn (``--repeat`` times, in ABBA order), each with fresh SDK processes."""
    results: dict[str, list[model.ServerResult]] = {}
    specs = list(server_specs(args).items())
    for repetition in range(args.repeat):
        # ABBA order: a drift in the machine's background load hits both servers alike.
        for name, (spec, version) in specs if repetition % 2 == 0 else specs[::-1]:
            log.info("=== %s (%s), run %d/%d", name, version, repetition + 1, args.repeat)
            services = Services(args.service_port, sys.executable, tag=f"{name}-run{repetition + 1}")
            try:
                if not await asyncio.to_thread(services.wait_ready):
                    raise SystemExit(
                        f"SDK service processes did not come up; see {WORK}/services-{name}-*.log"
                    )
                pids = [p.pid for p in services.procs]
                result = await runner.ServerBench(spec, version, pids, options, repetition + 1).run()
                results.setdefault(name, []).append(result)
            finally:
                services.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.render_only:
        runs, machine, settings = report.read(args.results.with_suffix(".json"))
        results = {name: aggregate.median_result(server_runs) for name, server_runs in runs.items()}
        settings["charts"] = charts.draw(results, args.results.parent / "charts")
        report.write(args.results, report.render(results, machine, settings), runs, machine, settings)
        log.info("rewrote %s from %s", args.results, args.results.with_suffix(".json"))
        return 0
    others = [name for name in _interfaces() if name != "lo"]
    if others and not args.allow_network:
        log.error("non-loopback interfaces visible (%s): run through bench/run.sh (private netns)", others)
        return 2
    WORK.mkdir(exist_ok=True)
    # On SIGTERM unwind like on Ctrl-C, so the finally blocks stop the servers and SDK processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    duration = args.duration if args.duration is not None else (2.0 if args.quick else 10.0)
    options = model.Options(
        duration_s=duration,
        max_ops=args.max_ops,
        drain_timeout_s=30.0 if args.quick else 120.0,
        settle_s=2.0 if args.quick else 5.0,
        service_port=args.service_port,
        work_dir=WORK,
        only=[w for w in args.only.split(",") if w] or None,
        idempotency_keys=not args.no_idempotency_keys,
        profile_dir=WORK / "profiles" if args.profile else None,
    )
    if args.profile and profile.available() is None:
        log.error("--profile needs py-spy (bench/run.sh --profile installs it)")
        return 2
    load_at_start = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    try:
        import uvloop

        runs = uvloop.run(run_all(args, options))
    except ImportError:
        runs = asyncio.run(run_all(args, options))
    results = {name: aggregate.median_result(server_runs) for name, server_runs in runs.items()}
    ours_versions = ", ".join(dict.fromkeys(r.version for r in runs.get(report.OURS, []))) or _ours_version()
    machine = report.machine_info(
        upstream_version=_version([str(args.upstream_bin)]), ours_version=ours_versions
    )
    settings = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "argv": shlex.join(["bench/run.sh", *(sys.argv[1:] if argv is None else argv)]),
        "duration_s": duration,
        "max_ops": args.max_ops,
        "repeat": args.repeat,
        "profiled": args.profile,
        "idempotency_keys": not args.no_idempotency_keys,
        "loadavg_start": load_at_start,
        "loadavg_end": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }
    if not args.no_write:
        settings["charts"] = charts.draw(results, args.results.parent / "charts")
    if options.profile_dir is not None:
        for directory in options.profile_dir.glob("*"):
            profile.summarize(directory)
        log.info("profiles: %s/*/summary.txt", options.profile_dir)
    text = report.render(results, machine, settings)
    print(text)
    if not args.no_write:
        report.write(args.results, text, runs, machine, settings)
        log.info("wrote %s and %s", args.results, args.results.with_suffix(".json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
