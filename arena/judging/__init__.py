"""LLM judges: prompts, verdict parsing, judge runs on the generation workers, the judge's
leaderboard and diagnostics, and its agreement with the human votes of the same campaign."""
