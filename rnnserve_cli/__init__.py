"""The `rnnserve` command: one entry point for serving, training, evaluating and load-testing."""
