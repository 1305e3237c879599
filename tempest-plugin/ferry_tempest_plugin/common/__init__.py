"""Helpers the tests share: waiting on migrations, workloads on the compute hosts, probes."""
