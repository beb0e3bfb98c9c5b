"""The pure core: records in, Backstage entities and their bytes out. No I/O, no settings lookups.

``entities`` is the transform (with ``naming``), ``validate`` holds Backstage's rules, ``render``
writes YAML and JSON bytes, ``locations`` the shards and Locations of the many-URL mode, and
``diff`` compares two catalogs.
"""
