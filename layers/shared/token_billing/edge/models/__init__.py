"""Pydantic models of the HTTP API: request bodies in, response objects out.

Token amounts appear twice: `<name>_mt`, an exact integer of milli-tokens for machines, and
`<name>`, the same amount as an exact decimal string ("1999.9") for people, the way Stripe
writes `unit_amount_decimal`. A JSON number would pass through float in most clients.
"""
