-- POST /api/v1/communities/{id}/points for one member, a fresh idempotency key per request:
-- every request is a real award (a used key would be answered `duplicate` without writing).
-- Arguments: user_id, then a run tag that keeps keys unique across runs.
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

local user_id, tag, sent

function init(args)
  user_id, tag, sent = args[1], args[2], 0
  -- Beside the Authorization header given with -H (wrk.format would replace wrk.headers).
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  sent = sent + 1
  local body = string.format(
    '{"user_id":"%s","reason":"bench","points":1,"idempotency_key":"%s-%d-%d"}',
    user_id, tag, thread_number, sent)
  return wrk.format("POST", nil, nil, body)
end
