"""Closing the loop: fine-tune base models on the release (or other datasets) and score them on the
benchmarks. Items with gold answers (items), SFT pairs (pairs), the table of scores (scores)."""
