"""`make chaos`: a bounded, loopback-only fault suite for vodportal.

It starts its own Redis, a vodsandbox process and the portal as deployed (gunicorn, 2
workers, PostgreSQL database `vodportal_chaos`), runs scenarios that break things while
clients create uploads (VOD faults, killed workers, terminated database sessions, Redis
going away, concurrent Idempotency-Keys, replayed callbacks), then lets `vod_sync` settle
everything and compares what VOD (the sandbox) holds with what the database says.

Layout: `services` (the processes), `load` (the HTTP clients and outcome counting),
`verify` (settling and the sandbox/database comparison), `scenarios` (a-e), `callbacks`
(f), `cli` (flags, the run, the table). Entry point: `bench/chaos.py`.
"""
