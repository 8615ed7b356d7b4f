"""Households service: who lives where, who is vulnerable, who is in quarantine."""
