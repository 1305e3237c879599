"""Ferry API tests: the REST contract, one resource per module."""
