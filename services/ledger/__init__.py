"""Ledger: deliveries on an append-only, tamper-evident log (RFC 6962 Merkle tree)."""
