"""The training layer: abliteration, re-alignment, preference pairs and the train/held-out splits."""
