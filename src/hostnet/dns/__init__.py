"""The embedded resolver: local service discovery and forwarding for compartments."""
