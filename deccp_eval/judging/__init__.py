"""The judging layer: the judge contract (`contract`), judge templates, the trained classifier, the
phrase tables and sentence reader the built-in judges share, and scoring judges against labels."""
