"""Mailing-list patches: parse public-inbox archives / mboxes, match e-mails to merged commits."""
