"""Harness of the pyroscope-relay end-to-end suite: a recording backend,
the relay process, a recording tap in front of the relay, the real clients,
and decoders for what travels between them."""
