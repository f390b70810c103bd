"""`kind: csv`: local CSV files (globs, encodings, dialects), read in a forked child when it pays."""
