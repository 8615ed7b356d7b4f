"""Relief: campaigns, donations, receipts, stock and rounds; for now, who is eligible."""
