"""Browser tests: real Chromium (Debian's package) against the server-rendered pages."""
