"""Snapshots: what requests read. ``build`` makes one from records (reusing the last),
``store`` refreshes and swaps them and keeps each source's status, ``persist`` the state files."""
