"""The store layer: one SQLite file whose every table `migrations` owns; the results store (`db`),
typed rows its reads return (`rows`), provider batches (`batches`) and review state (`review_state`)."""
