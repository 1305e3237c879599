"""Tempest plugin for Ferry: API and scenario tests of container live migration."""
