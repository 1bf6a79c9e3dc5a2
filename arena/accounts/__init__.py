"""Accounts: API tokens (only a digest of each key is stored)."""
