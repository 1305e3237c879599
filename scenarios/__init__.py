"""Tempest-style scenario tests for Ferry: the three classic container live-migration demos,
driven through the `openstack` CLI against a live cloud. See README.md."""
