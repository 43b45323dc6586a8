"""Outbox delivery: e-mail over SMTP and signed webhooks, rendered from templates.

Rows are written by :mod:`lockbox.service.notifications` in the transaction of
the change they announce; :mod:`lockbox.notify.dispatcher` claims, renders,
sends and marks them (see ``docs/notifications.md``).
"""
