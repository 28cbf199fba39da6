"""Conversations and transcripts: the projection, who may do what, replies, notes, macros,
search, retention and the transcript access log."""
