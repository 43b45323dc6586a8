"""Lockbox: customer-approved, time-bounded, audited support access."""

__version__ = "0.1.0"
