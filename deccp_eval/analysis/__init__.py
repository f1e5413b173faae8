"""The analysis layer: the leaderboard, the language gap, the HTML report and the publish bundle."""
