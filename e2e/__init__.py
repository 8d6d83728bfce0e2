"""End-to-end tests: a fake Kubernetes API server, a test kubelet, and the operator scenario (issue 3)."""
