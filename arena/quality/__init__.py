"""Vote quality: per-evaluator figures and the outlier flag (`read`), exclusions with their
audit trail (`exclusions`), gold, repeat and overlap battles (`control`), and the rules they
share (`rules`). The maths is `arena.ranking.quality` and `arena.ranking.raters`; which votes
count is still decided in one place, `arena.ratings.store.counted_votes`."""
