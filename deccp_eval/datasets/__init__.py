"""The datasets layer: prompt sets from files, the Hub and plugins (`loading`), the built-in sets that
ship in `prompts/` (`builtin`), and their statistics."""
