"""Adapters over the service: REST now; the Docker plugin and CNI later."""
