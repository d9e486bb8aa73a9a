"""The CX service: domain types, sequencer, journal, engine loop, config and the ``cx`` CLI."""
