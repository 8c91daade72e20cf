"""Payment collection and dunning through Stripe (issue 6).

- gateway.py: the abstract gateway; stripe_gateway.py: on the official SDK (StripeClient)
- store.py: append-only tables and the derived payment status (DuckDB and PostgreSQL)
- collection.py: `valueverse payments collect`, reconcile.py: crash and timeout recovery,
  expiry.py: requires_action ages out into dunning, dunning.py: the retry policy (pure),
  attempts.py: recording, settings.py: configuration
- webhooks.py: Stripe-signed event verification; demo.py and localstripe.py: a local server
"""
