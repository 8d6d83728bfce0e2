"""`restate-py-replay`: print an object's state history as JSON lines (one event per line).

    restate-py-replay Counter alice --address 127.0.0.1:5122 --start-ts 1700000000000

Exit codes: 0 when the stream ended, 1 on an error status (printed to stderr as `CODE: message`),
130 on Ctrl-C. A closed stdout (e.g. `| head`) ends the stream quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import grpc

from restate_server.replay.client import DEFAULT_ADDRESS, ReplayClient, event_json


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="restate-py-replay", description="Stream the state history of a virtual object or workflow key."
    )
    parser.add_argument("namespace", help="the virtual object or workflow service name")
    parser.add_argument("agent_id", help="the object key (workflow id)")
    parser.add_argument(
        "--address",
        default=os.environ.get("RESTATE_REPLAY_ADDRESS", DEFAULT_ADDRESS),
        help=f"a node port, host:port (default {DEFAULT_ADDRESS}, or $RESTATE_REPLAY_ADDRESS)",
    )
    parser.add_argument("--start-ts", type=int, help="first commit time, epoch ms (inclusive)")
    parser.add_argument("--end-ts", type=int, help="last commit time, epoch ms (inclusive)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with ReplayClient(args.address) as client:
        events = client.replay(
            namespace=args.namespace, agent_id=args.agent_id, start_ts=args.start_ts, end_ts=args.end_ts
        )
        try:
            for event in events:
                sys.stdout.write(json.dumps(event_json(event), separators=(",", ":")) + "\n")
                sys.stdout.flush()
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            name = code.name if code is not None else "UNKNOWN"
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            print(f"{name}: {details}", file=sys.stderr)
            return 1
        except BrokenPipeError:
            sys.stderr.close()  # nobody reads our output any more; say nothing more
            return 0
        except KeyboardInterrupt:
            return 130
        finally:
            events.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
