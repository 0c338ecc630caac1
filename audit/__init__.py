"""Audit and replay: workflow histories replayed against the current code (a deploy gate),
histories exported for archiving, and an account's evidence gathered for a reader."""
