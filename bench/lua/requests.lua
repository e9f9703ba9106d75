-- Replays prepared requests from a file, each thread its own share, in order.
-- Line format: METHOD \t PATH \t header:value|header:value \t body (no tabs or newlines inside).
-- Args: <file> [cycle]. Without "cycle" a thread that has sent all of its share stops
-- sending new ones (repeats would not be first deliveries): done() reports how many threads
-- ran out, so the bench can tell the run was too long for the file.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path = args[1]
  cycle = args[2] == "cycle"
  local total = tonumber(args[3] or "2")
  prepared = {}
  local index = 0
  for line in io.lines(path) do
    if index % total == id then
      local method, target, headers_field, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = {}
      for pair in headers_field:gmatch("[^|]+") do
        local name, value = pair:match("^([^:]+):(.*)$")
        headers[name] = value
      end
      table.insert(prepared, wrk.format(method, target, headers, body))
    end
    index = index + 1
  end
  position = 0
  ran_out = 0
end

function request()
  position = position + 1
  if position > #prepared then
    if cycle then
      position = 1
    else
      ran_out = 1
      position = #prepared
    end
  end
  return prepared[position]
end

function done(summary, latency, requests)
  local out = 0
  for _, thread in ipairs(threads) do
    out = out + (thread:get("ran_out") or 0)
  end
  io.write(string.format("threads that ran out of requests: %d\n", out))
end
