"""The Replay API: stream the committed state changes of one virtual object or workflow key over gRPC.

`servicer` serves `restate.replay.v1.StateReplay` on the node port from the state history table
(`storage.state_history`) through a `source.HistorySource`; `client` and `cli` are its Python client
and the `restate-py-replay` command. The protobuf classes are generated from `replay.proto`
(`make proto`).
"""
