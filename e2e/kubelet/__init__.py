"""The test kubelet: runs the pods of a (fake) cluster as local processes on loopback addresses.

It plays the node agent and the controllers a real cluster would have: the StatefulSet and ReplicaSet
controllers (pods from templates, scaling, rolling restarts of StatefulSets, workload status), the
kubelet (one process per pod on its own 127.0.R.n address, env and downward API, ConfigMap, Secret,
emptyDir and PVC volumes as directories, readiness probes, restarts, graceful termination), and the
network (Endpoints, a TCP proxy per Service ClusterIP, and a hosts map for cluster DNS). See
``e2e/README.md`` for the mapping rules.
"""
