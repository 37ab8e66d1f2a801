"""Auto top-up: when available tokens cross below the customer's threshold, buy the fewest
packs that reach the target with the saved card, once per need, within caps, loudly.

Three steps, three functions, each in its own Lambda, each step its own module here:

- `settings` (`update_settings`, `settings_view`, the auto-top-up function): what the
  customer asked for, with consent;
- `admission` (`TopUpTrigger.on_account_change`, in the ledger stream, never on the debit
  path): a crossing of *available* tokens admits one attempt through one conditional write
  (`store.top_up_store.TopUpStore.admit`), which also writes the attempt's pending order;
- `charge` (`charge_attempt`, in the charger, the only one of the three that loads
  stripe): ONE off-session PaymentIntent for all the packs, keyed by the attempt id, retried
  under that key on provider errors, ended in a recorded outcome on every path
  (`attempt_end`: `decide_end` says what the outcome does to the breaker).

The tokens come through the webhook's exactly-once order credit (`webhooks`, routed by
`domain.stripe_events`); `vocabulary` holds the outcomes and limits the steps share. The
store decides nothing: it writes what these modules decide. Nothing is imported here, so
each function loads only its own step.

Cost: a ledger-stream batch reads each customer's TOPUP item once when its available tokens
went down (0.5 RCU, eventually consistent); a crossing that admits is one transaction of 3
items (about 6 WCU); an attempt's end is 1 GetItem + a transaction of 2 items.
"""
