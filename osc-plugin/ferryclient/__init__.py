"""Python client and OpenStack client plugin for Ferry (container live migration)."""

__version__ = '0.1.0'
