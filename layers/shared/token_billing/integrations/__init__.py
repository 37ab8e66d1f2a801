"""The other services we call: Stripe (Checkout, webhook signatures) and EventBridge."""
