"""HTTP: the app factory and lifespan (``app``), routes that only read the current snapshot,
conditional requests and negotiation (``responses``), limits, metrics and events."""
