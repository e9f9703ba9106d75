-- wrk: POST .../activities/batch, each request a batch of <size> message activities whose
-- idempotency keys no other request uses (<run>-<thread>-<request>-<item>), spread over
-- <users> members. Arguments: <size> <users> <run>. Headers (the API key) come from wrk -H.
local next_thread = 0

function setup(thread)
  thread:set("id", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  size = tonumber(args[1]) or 1000
  users = tonumber(args[2]) or 2000
  run = args[3] or "run"
  sent = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  sent = sent + 1
  local prefix = string.format("%s-%d-%d-", run, id, sent)
  local items = {}
  for i = 1, size do
    local user = (sent * size + i + id * 7919) % users
    items[i] = string.format(
      '{"kind":"message","user_id":"user_%d","idempotency_key":"%s%d"}', user, prefix, i)
  end
  return wrk.format(nil, nil, nil, '{"activities":[' .. table.concat(items, ",") .. "]}")
end
