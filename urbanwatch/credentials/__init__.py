"""Broker credentials (issue #9, docs/security-devices.md): one Mosquitto account per device,
gateway and service, its password hashed as Mosquitto hashes them, and the broker's password
and ACL files written from the database.

hashing.py   passwords and Mosquitto's PBKDF2-SHA512 ($7$) hashes (pure)
accounts.py  usernames, what each account may do, the two files' text (pure)
broker.py    writing those files atomically and making the broker reload them
fleet.py     issue / rotate / revoke / list against the database, audited
cli.py       `urbanwatch devices credentials ...` and `urbanwatch broker sync`
"""
