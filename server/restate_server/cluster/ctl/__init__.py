"""The control services upstream's `restatectl` calls on a node's port, answered from this node's state.

`restatectl` speaks gRPC to upstream's `NodeCtlSvc` and `ClusterCtrlSvc` (the `.proto` files here are
this project's own, written from upstream's wire contract: same packages, names and field numbers) and
decodes cluster-wide documents in upstream's serde shapes. `services` answers those calls, `wire`
serves them over HTTP/2 (grpcio cannot read restatectl's zstd requests), `documents` builds the
documents, `registry` gives nodes upstream's numeric ids and generations, `state` reports the partition
processors of every node, and `topology` is where a single node and a cluster node differ.
"""
