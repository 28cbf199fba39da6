"""Pure, I/O-free verification and parsing of provider requests (Twilio, Mailgun, MIME, chat)."""
