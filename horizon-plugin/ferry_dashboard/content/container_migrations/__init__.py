"""Admin -> Compute -> Container Migrations: hosts, containers and migrations of Ferry."""
