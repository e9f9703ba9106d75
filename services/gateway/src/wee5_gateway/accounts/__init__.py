"""Accounts and their sessions: sign-up, sign-in, refresh-token rotation with reuse detection,
sign-out, and the caller's own account with its community roles."""
