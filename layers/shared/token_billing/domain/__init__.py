"""Decisions: debits, holds, payments, purchases, estimate, reconcile, catalog, usage.

No AWS event shapes, no boto3 calls of its own: DynamoDB goes through `token_billing.store`,
Stripe and EventBridge through `token_billing.integrations`, each handed in or built there.
"""
