"""Use cases: one function per user intent, each one transaction.

A use case loads what it needs, asks the domain to decide, then writes the
state change, its audit records and its outbox rows in the same transaction —
all of them or none.
"""
