"""relief-audit: anyone can check the ledger from its public export (see docs/audit.md)."""
