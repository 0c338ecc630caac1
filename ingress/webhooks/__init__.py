"""Signed inbound webhooks: Twilio (SMS replies, delivery status), SendGrid (email events),
the telematics provider (lockout confirmations). Every request is verified before anything
is read or written, and deduplicated by the provider's own event id in `inbound_events`."""
