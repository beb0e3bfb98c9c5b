"""A fleet of processes, each reading and serving its own part of the sources (partitions).

``ownership`` says which partition owns each source (rendezvous hashing); ``reader`` lets a
process read only its own; ``locations`` are the Locations that join the parts in Backstage.
"""
