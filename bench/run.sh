#!/usr/bin/env bash
# One command for the whole benchmark: bench/run.sh [--quick] [any `python -m bench` flag; see --help]
#
# 1. (with network) installs what it needs: upstream restate-server (npm, pinned) into bench/.work,
#    the Python packages the SDK side needs into the repo's .venv if missing, iproute2 if missing;
# 2. re-executes itself inside a private network namespace (`unshare --net`, root) with only
#    loopback up, so nothing the servers do can leave the machine;
# 3. runs `python -m bench`, which benchmarks each server in turn and rewrites bench/RESULTS.md.
#
# BENCH_NICE=-5 bench/run.sh ...  runs the benchmark (servers, SDK processes, generator) at that nice
# level, to shield it from other work on a shared machine (default 0: no change).
set -euo pipefail

UPSTREAM_VERSION=1.7.12
SDK_SPEC='restate-sdk==1.3.*'
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
WORK="$HERE/.work"
PY="$REPO/.venv/bin/python"
BIN="$WORK/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server"

if [[ "${BENCH_IN_NETNS:-}" != "1" ]]; then
  if [[ $EUID -ne 0 ]]; then
    echo "bench/run.sh: needs root for 'unshare --net' (private network namespace)" >&2
    exit 2
  fi
  mkdir -p "$WORK"
  if [[ ! -x "$BIN" ]] || [[ "$("$BIN" --version 2>/dev/null)" != "restate-server $UPSTREAM_VERSION" ]]; then
    echo "bench/run.sh: installing @restatedev/restate-server@$UPSTREAM_VERSION into $WORK" >&2
    [[ -f "$WORK/package.json" ]] || echo '{"name": "restate-bench-work", "private": true}' > "$WORK/package.json"
    (cd "$WORK" && npm install --no-audit --no-fund --save-exact "@restatedev/restate-server@$UPSTREAM_VERSION")
  fi
  if [[ ! -x "$PY" ]]; then
    echo "bench/run.sh: no venv at $REPO/.venv (create it: python3 -m venv .venv && .venv/bin/pip install -e '.[dev]')" >&2
    exit 2
  fi
  if ! "$PY" -c 'import restate, hypercorn, uvloop' 2>/dev/null; then
    "$PY" -m pip install --quiet "$SDK_SPEC" hypercorn uvloop
  fi
  if [[ " $* " == *" --profile "* ]] && [[ ! -x "$REPO/.venv/bin/py-spy" ]]; then
    "$PY" -m pip install --quiet "py-spy==0.4.3"
  fi
  if ! command -v ip >/dev/null; then
    apt-get update -qq && apt-get install -y -qq iproute2
  fi
  exec unshare --net -- env BENCH_IN_NETNS=1 "$0" "$@"
fi

ip link set lo up
cd "$REPO"
# Byte-compile our server as `pip install` does for an installed package: the checkout is an editable
# install, and with PYTHONDONTWRITEBYTECODE set (as on the shared machines) every start and restart
# would otherwise compile ~300 modules again (about 0.1 s of each restart).
"$PY" -m compileall -q server/restate_server >/dev/null
exec nice -n "${BENCH_NICE:-0}" "$PY" -m bench "$@"
