"""The CNI face: the daemon side of ADD/DEL/CHECK/GC (``adapter.py``, with the runtime's
environment in ``env.py`` and the Windows CNI plugins' options in ``windows.py``) and the
forwarder runtimes exec (``plugin.py``; the C shim is the repository's ``cni/``).

Nothing is imported here: ``plugin.py`` runs once per CNI call and loads only itself."""
