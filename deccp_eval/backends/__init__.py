"""The backends layer: the backend contract and its options (`contract`), local weights, fingerprints,
prices, and the engine remote API backends share (`remote`)."""
