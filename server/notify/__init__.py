"""Alerts (issue 16): chat-robot and webhook channels, the notification queue written
with the event, and the delivery worker."""
