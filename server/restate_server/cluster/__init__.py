"""Clusters: nodes sharing partitions through etcd (membership, the controller, leadership changes).

A node registers itself under a lease; one node (elected through a leased key) is the controller and
keeps the partition table (which nodes replicate each partition, which one leads it, at which epoch);
every node follows that table: it runs a processor for each partition it replicates and leads the
ones the table gives it, fencing the previous leader through the log's epoch.
"""
