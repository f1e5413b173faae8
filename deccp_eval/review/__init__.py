"""Human review: a local web app to label stored answers and review gold references, the label
store behind it, stratified sampling, and agreement between reviewers and with judges.

Importing this package is light: the web server (Starlette, uvicorn) loads only in `server`.
"""
