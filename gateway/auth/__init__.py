"""API keys and signed requests: the key store, secret encryption and verification."""
