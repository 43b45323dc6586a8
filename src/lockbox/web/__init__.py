"""The web admin center and support portal: server-rendered HTML pages.

Customer administrators and approvers, support engineers and managers, and
provider admins use these pages from a browser. They are rendered on the
server (Jinja2) over the same service layer as the JSON API, so every rule,
permission check and audit record is the API's own; the pages add no logic of
their own beyond presentation. They work without JavaScript: ``static/lockbox.js``
only enhances them (local time zone, live deadlines, double-submit guard).
"""
