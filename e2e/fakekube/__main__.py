"""``python -m e2e.fakekube``: run the fake API server."""

from .server import main

main()
