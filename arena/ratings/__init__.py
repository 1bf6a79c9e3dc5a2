"""The ratings aggregate: count a campaign's votes, rate them, store one snapshot per scope
(`recompute`, `store`), queue recomputes after votes (`schedule`), and read the stored
snapshots for pages, the API and exports (`read`). `snapshot` types the stored payload."""
