"""Fake provider servers for the remote-backend tests and benchmarks (real HTTP on 127.0.0.1)."""
