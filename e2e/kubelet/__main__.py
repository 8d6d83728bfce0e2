"""``python -m e2e.kubelet``: run the test kubelet against an API server."""

from .kubelet import main

main()
