"""fakekube: a small in-memory Kubernetes API server for end-to-end tests of kubectl and kopf.

It holds objects in memory (no etcd), serves discovery for the built-in resources it knows and for every
CustomResourceDefinition applied to it, and implements the API semantics the operator and kubectl rely
on: one global resourceVersion, generations, watches that resume from a resourceVersion, the status and
scale subresources, patches (JSON, merge, strategic as an approximation, server-side apply as an
approximation), finalizers, propagation policies and owner-reference garbage collection, and
defaulting and pruning from CRD structural schemas. See ``e2e/README.md`` for what it does not do.
"""
