"""Runnable examples that use the service through `rnnserve_client`."""
