"""Source adapters: each kind is one module plus an entry in registry.py."""
