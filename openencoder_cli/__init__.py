"""The `openencoder` command line."""
