"""hostnet: a host networking service for Linux containers."""

__version__ = "0.1.0"
