"""An idle server stays small: the query engine's libraries load with the first query, not at start-up.

pyarrow, datafusion and numpy are about 65 MB resident together; a module imported at start-up that
imports them at its top (the cluster's scan fan-out once did) puts them in every idle node.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pyarrow", "datafusion", "numpy")


def test_starting_a_node_does_not_load_the_query_engine() -> None:
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
