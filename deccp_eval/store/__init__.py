"""The store layer: the SQLite results store (`db`), provider batches (`batches`) and review state
(`review_state`), all in one file."""
