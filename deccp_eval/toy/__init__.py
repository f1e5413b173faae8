"""The toy model: a tiny offline chat model (`model`), the world it knows (`data`) and its prompt sets."""
