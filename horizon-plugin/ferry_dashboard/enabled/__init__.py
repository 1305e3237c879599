"""Horizon's enabled files for Ferry's panel (copied into openstack_dashboard/local/enabled)."""
