"""Ferry's tempest tests: api/ (the REST contract) and scenario/ (workloads that move)."""
