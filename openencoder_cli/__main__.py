"""`python -m openencoder_cli`, the same as the `openencoder` script."""

from openencoder_cli.main import run

run()
