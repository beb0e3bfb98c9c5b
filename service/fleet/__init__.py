"""A fleet of processes, each reading and serving its own part of the sources (partitions).

``service/ownership.py`` says which partition owns each source (rendezvous hashing); here,
``reader`` lets a process read only its own, and ``locations`` are the Locations that join the
parts in Backstage.
"""
