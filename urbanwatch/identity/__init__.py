"""People and machines on the API (issue #9): roles, password and key hashing, tokens, login
rate limits, the account operations the API and the CLI share (each audited), docs/security.md.
"""
