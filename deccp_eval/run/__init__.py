"""The run layer: the runner, its workers and writer, executors, models files and gold references."""
