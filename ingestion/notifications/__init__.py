"""Notifications: what the billing store's outbox (ingestion/billing/outbox.py) recorded, told
to the people and systems that need to hear it, and the usage and spend thresholds that add to
it. The outbox is written by the state changes themselves, in their transactions; this room
only reads it and delivers, so a slow or failing receiver never holds up billing."""
