"""Absolute grading campaigns: one anonymous answer at a time, graded on a rubric."""
