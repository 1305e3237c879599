"""Calls from the dashboard to Ferry's REST API."""
