-- wrk: a mix over every route (API, errors, health, unknown path, wrong method), round robin.
local body = '{"n": 1}'
local json = {["Content-Type"] = "application/json"}
local requests = {
  wrk.format("GET", "/api/users"),
  wrk.format("GET", "/api/users"),
  wrk.format("GET", "/api/users"),
  wrk.format("POST", "/api/echo", json, body),
  wrk.format("POST", "/api/echo", json, body),
  wrk.format("GET", "/api/error"),
  wrk.format("GET", "/api/error?type=client"),
  wrk.format("GET", "/health/liveness"),
  wrk.format("GET", "/health/readiness"),
  wrk.format("GET", "/no/such/path"),
  wrk.format("DELETE", "/api/users"),
}
local i = 0

function request()
  i = i + 1
  return requests[(i % #requests) + 1]
end
