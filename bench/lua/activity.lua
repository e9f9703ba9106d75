-- wrk: POST .../activities, one message activity per request with an idempotency key no other
-- request uses (<run>-<thread>-<request>), spread over <users> members.
-- Arguments: <users> <run>. Headers (the API key) come from wrk -H.
local next_thread = 0

function setup(thread)
  thread:set("id", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  users = tonumber(args[1]) or 2000
  run = args[2] or "run"
  sent = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  sent = sent + 1
  local user = (sent + id * 7919) % users
  return wrk.format(nil, nil, nil, string.format(
    '{"kind":"message","user_id":"user_%d","idempotency_key":"%s-%d-%d"}', user, run, id, sent))
end
