"""``hostnet``, the command line: a client of the daemon's API. ``commands.py`` is the
command tree; the groups of its own (``lifecycle``, ``ops``, ``hns``), running commands in
compartments (``runcmd``), the seed's cmdlets (``powershell``, ``cmdlets``) and the
topology drawing are beside it."""

from hostnet.cli.commands import main

__all__ = ["main"]
