"""An idle server stays small and starts fast: libraries a node may never use load on first use.

pyarrow, datafusion and numpy are about 65 MB resident together; a module imported at start-up that
imports them at its top (the cluster's scan fan-out once did) puts them in every idle node. The
OpenTelemetry SDK and its OTLP exporter cost ~30 ms of every start and restart; they load only when
`tracing-endpoint` is set. aiohttp's two default TLS contexts load the system's CA store (~40 ms);
the server never uses them, and loads the store on its first call to an https:// deployment. The
Kafka client and the snapshots' object store (~25 ms together) load with the first subscription and
with a configured snapshot destination.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "pyarrow",
    "datafusion",
    "numpy",
    "opentelemetry.sdk",
    "opentelemetry.exporter",
    "confluent_kafka",
    "obstore",
)


def test_starting_a_node_loads_no_library_it_may_never_use() -> None:
    probe = (
        "import sys, restate_server.__main__, restate_server.node;"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""


def test_the_first_query_loads_it() -> None:
    probe = "import sys, restate_server.admin.query.engine; print('pyarrow' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "True"


def test_configuring_tracing_loads_the_exporter() -> None:
    probe = (
        "import sys; from restate_server.observability import tracing;"
        "tracing.configure('http://127.0.0.1:4317', headers={}, node_name='n');"
        "print('opentelemetry.exporter.otlp.proto.grpc.trace_exporter' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "True"


def test_aiohttp_is_imported_without_loading_the_ca_store_and_https_calls_load_it() -> None:
    probe = (
        "import ssl; from restate_server.web import tls;"
        "load = ssl.SSLContext.set_default_verify_paths; tls.import_aiohttp();"
        "from aiohttp import connector;"
        "print(connector._SSL_CONTEXT_VERIFIED.cert_store_stats()['x509_ca'],"
        " ssl.SSLContext.set_default_verify_paths is load,"
        " tls.deployment_context().cert_store_stats() == ssl.create_default_context().cert_store_stats(),"
        " tls.deployment_context().verify_mode == ssl.CERT_REQUIRED)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["0", "True", "True", "True"], done.stdout  # 0: no CA in aiohttp's
