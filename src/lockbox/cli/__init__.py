"""The ``lockbox`` command."""
