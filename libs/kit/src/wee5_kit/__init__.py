"""Shared plumbing for WEE5 services: settings, logging, database, gRPC, events and Redis.

Nothing here knows a business rule; services build their rules on top of it.
"""
