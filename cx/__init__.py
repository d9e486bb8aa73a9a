"""The ``cx`` command: the composition root.

It may import every package of the exchange and none imports it. It builds the one
configuration (``cx.settings``) once at start and hands each package its section.
"""
