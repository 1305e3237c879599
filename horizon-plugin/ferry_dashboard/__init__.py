"""Horizon plugin for Ferry: the Container Migrations panel under Admin -> Compute."""
