"""Restrictions on how a likeness may be used (issue 16): set by its owner, checked at precheck, and the
generations held for the owner's approval (``docs/restrictions.md``)."""
