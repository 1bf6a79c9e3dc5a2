"""Question sets: uploads (CSV, JSON, JSONL) and the demo data of `make run`."""
