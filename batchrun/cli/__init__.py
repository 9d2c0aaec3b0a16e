"""The ``batchrun`` command line."""
