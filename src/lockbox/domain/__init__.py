"""The pure core of Lockbox.

Nothing in this package performs I/O or imports a framework: the current time
is always passed in, so every rule can be tested with a plain clock value.
"""
