"""The Chat-facing shell: the web adapter, request verification, events, dispatch and replies."""
