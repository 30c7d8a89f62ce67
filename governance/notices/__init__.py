"""Takedown notices from anyone (issue 16): a person without an account reports a video released here; their own
face, proven live, takes it down at once and keeps it down; anything else goes to a review queue
(``docs/notices.md``)."""
