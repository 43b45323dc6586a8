"""A small mail store protected by Lockbox (see ``app.py``)."""
