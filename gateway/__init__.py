"""The gateway: the process that faces users and runs the exchange around one engine.

Today it starts every part of the exchange on one machine (``cx serve``) and serves the
operator status API; REST order entry, ``/fix`` and ``/ws`` come with the gateway issue.
Nothing imports ``gateway``.
"""
