# Every target CI runs is here; .ci/run calls `make install check`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Test modules run in parallel worker processes (one module stays on one worker, so its fixtures are
# built once); most integration tests wait on servers rather than use a core. TEST_WORKERS=0: serial.
TEST_WORKERS ?= 4
XDIST := -n $(TEST_WORKERS) --dist loadfile

.PHONY: install test test-unit test-integration test-e2e lint imports fmt typecheck proto bench check run

install:
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,operator]'

test:
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

test-unit:
	$(PY) -m pytest tests --ignore=tests/integration $(XDIST) $(PYTEST_ARGS)

test-integration:
	$(PY) -m pytest tests/integration $(XDIST) $(PYTEST_ARGS)

test-e2e:
	$(PY) -m pytest e2e $(XDIST) $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check server operator tests e2e bench examples
	$(VENV)/bin/ruff format --check server operator tests e2e bench examples

fmt:
	$(VENV)/bin/ruff format server operator tests e2e bench examples
	$(VENV)/bin/ruff check --fix server operator tests e2e bench examples

typecheck:
	$(VENV)/bin/mypy server/restate_server operator/restate_operator

# Layer contracts of pyproject.toml's [tool.importlinter] (kopf's .importlinter idea)
imports:
	$(VENV)/bin/lint-imports

# Regenerate the protobuf classes after editing a .proto (mypy-protobuf types the gRPC stubs)
proto:
	$(PY) -m grpc_tools.protoc -Iserver --python_out=server --pyi_out=server server/restate_server/protocol/protocol.proto
	$(PY) -m grpc_tools.protoc -Iserver --python_out=server --pyi_out=server --grpc_python_out=server \
		--plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc --mypy_grpc_out=server \
		server/restate_server/replay/replay.proto
	$(PY) -m grpc_tools.protoc -Iserver --python_out=server --pyi_out=server \
		server/restate_server/cluster/ctl/common.proto server/restate_server/cluster/ctl/cluster_state.proto
	$(PY) -m grpc_tools.protoc -Iserver --python_out=server --pyi_out=server --grpc_python_out=server \
		--plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc --mypy_grpc_out=server \
		server/restate_server/cluster/ctl/node_ctl_svc.proto server/restate_server/cluster/ctl/cluster_ctrl_svc.proto \
		server/restate_server/cluster/ctl/peer.proto

bench:
	bench/run.sh

run:
	$(VENV)/bin/restate-py-server

check: lint imports typecheck test
