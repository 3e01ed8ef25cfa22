"""The Docker face: the remote network and IPAM driver protocol (``plugin.py``,
``ipam.py``, ``endpoints.py``), Docker networks kept bound to hostnet networks
(``binding.py``) and the Engine API client and watch (``engine.py``)."""
