"""Open Encoder domain code: imports nothing from Chalice."""
