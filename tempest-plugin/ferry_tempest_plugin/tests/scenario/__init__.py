"""Ferry scenario tests: real workloads moved while a tenant's client watches them."""
