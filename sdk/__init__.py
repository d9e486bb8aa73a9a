"""The CX Python client, installable alone: it imports nothing of the server."""
