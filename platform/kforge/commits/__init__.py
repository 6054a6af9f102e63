"""Tables derived from ingested commits: tags, fix/revert chains, author expertise, exports."""
