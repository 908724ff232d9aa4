"""Stand-in servers for tests, listening on 127.0.0.1 only."""
