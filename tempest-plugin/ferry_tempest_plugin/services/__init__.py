"""Service clients of Ferry's REST API, on tempest's RestClient."""
