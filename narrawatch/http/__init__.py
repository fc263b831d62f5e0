"""What the HTTP API (:mod:`narrawatch.api`) and the web UI (:mod:`narrawatch.web`) share: who is
asking (tokens, sessions, roles: :mod:`~narrawatch.http.session`), how errors are answered
(:mod:`~narrawatch.http.errors`) and the request guards (:mod:`~narrawatch.http.guards`).
Neither front-end imports the other; :mod:`narrawatch.server` mounts both.
"""
