"""Git history ingestion: streaming `git log` parsing, trailers, subsystems, demo repositories."""
