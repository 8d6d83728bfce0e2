"""Kafka subscriptions: the catalogue of subscriptions and clusters, and the consumers that follow it.

Upstream splits this between its schema registry (subscriptions, clusters) and the `ingress-kafka`
crate (consumers). Here both live in one component that sits below the admin API (which edits the
catalogue through :mod:`restate_server.kafka.catalog`) and above the worker (whose partitions the
consumers append to): `catalog` (stored form), `events` (a record → an invocation, pure), `consumer`
(the librdkafka thread), `dispatcher` (appends, offsets, backpressure), `manager` (one consumer per
subscription). Importing the package imports none of them.
"""
