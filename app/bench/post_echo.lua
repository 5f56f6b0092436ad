-- wrk: POST /api/echo with a small JSON body.
wrk.method = "POST"
wrk.body = '{"user": {"id": 101, "name": "John Doe"}, "tags": ["a", "b"], "n": 42}'
wrk.headers["Content-Type"] = "application/json"
