"""The core's transactions, each a module of its own: ``attach`` (plan, record, realize an
endpoint in a compartment; detach it) and ``endpoints`` (endpoints in HCN's order: made
unattached, attached to a namespace or the host, detached, deleted)."""
