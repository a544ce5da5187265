"""Paper-comparison benchmark suite for nudge-rag (issue 5). Not part of the installed package."""
