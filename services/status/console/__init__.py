"""The console: the pages librarians work at, and their live updates."""
