-- Refuses a REST request body that names a field its RPC's request message does not
-- have (400), instead of the transcoder's silent drop of unknown fields: a client's typo
-- ("quantitiy") or a field it hopes we honour ("user_id", "status") must not look
-- accepted. tools/envoy_config.py prepends ROUTES, generated from the descriptor set:
--   ROUTES = { {method = "POST", pattern = "^/v1/reservations$", schema = {fields = {...}}}, ... }
-- A schema is {fields = {name = true | schema}}: true accepts any value (scalars,
-- well-known types, maps); a nested schema checks a message field (or each element of a
-- repeated one). Both the proto name and the lowerCamelCase JSON name are listed.
-- A body that is not valid JSON is left to the transcoder (it answers 400 itself).
--
-- Second job: a request that carries an idempotency key (CreateReservation's request_id,
-- in a REST body or a native gRPC message) is marked with IDEMPOTENT_HEADER, which routes
-- it to a route that may retry it (GRPC_IDEMPOTENCY: gRPC path -> field number).

local MAX_DEPTH = 32

local function ws(s, i)
  return s:find("[^ \t\r\n]", i) or #s + 1
end

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function unescape(raw)
  if not raw:find("\\", 1, true) then return raw end
  raw = raw:gsub("\\u(%x%x%x%x)", function(hex)
    local n = tonumber(hex, 16)
    return n < 128 and string.char(n) or "?"
  end)
  return (raw:gsub("\\(.)", function(c) return ESCAPES[c] or c end))
end

-- Returns the index after the string starting at s[i] == '"', and its raw content.
local function str(s, i)
  local j = i + 1
  while true do
    local k = s:find('["\\]', j)
    if not k then return nil end
    if s:sub(k, k) == '"' then return k + 1, s:sub(i + 1, k - 1) end
    j = k + 2
  end
end

-- Returns the index after the value at s[i], or nil plus a reason:
-- "syntax" (leave it to the transcoder), or a message for the client.
local function value(s, i, schema, depth, keys, found)
  local c = s:sub(i, i)
  if c == "{" or c == "[" then
    if depth >= MAX_DEPTH then return nil, "the request body nests too deeply" end
  end
  if c == "{" then
    i = ws(s, i + 1)
    if s:sub(i, i) == "}" then return i + 1 end
    while true do
      if s:sub(i, i) ~= '"' then return nil, "syntax" end
      local after, raw = str(s, i)
      if not after then return nil, "syntax" end
      local key = unescape(raw)
      local child = nil
      if type(schema) == "table" then
        child = schema.fields[key]
        if child == nil then
          return nil, string.format('unknown field "%s" in the request body', key:sub(1, 64))
        end
      end
      i = ws(s, after)
      if s:sub(i, i) ~= ":" then return nil, "syntax" end
      local err
      local start = ws(s, i + 1)
      i, err = value(s, start, child, depth + 1)
      if not i then return nil, err end
      if depth == 0 and keys and keys[key] and s:sub(start, start) == '"' and i - start > 2 then
        found.idempotent = true  -- a non-empty string
      end
      i = ws(s, i)
      c = s:sub(i, i)
      if c == "}" then return i + 1 end
      if c ~= "," then return nil, "syntax" end
      i = ws(s, i + 1)
    end
  elseif c == "[" then
    i = ws(s, i + 1)
    if s:sub(i, i) == "]" then return i + 1 end
    while true do
      local err
      i, err = value(s, i, schema, depth + 1)
      if not i then return nil, err end
      i = ws(s, i)
      c = s:sub(i, i)
      if c == "]" then return i + 1 end
      if c ~= "," then return nil, "syntax" end
      i = ws(s, i + 1)
    end
  elseif c == '"' then
    local after = str(s, i)
    if not after then return nil, "syntax" end
    return after
  else
    local _, e = s:find("^[-+%w%.]+", i)  -- numbers, true, false, null (checked by the transcoder)
    if not e then return nil, "syntax" end
    return e + 1
  end
end

-- Whether an uncompressed gRPC message (5-byte frame prefix, then protobuf) has a
-- non-empty length-delimited field number `field`.
local function proto_has(s, field)
  if #s < 5 or s:byte(1) ~= 0 then return false end
  local i, n = 6, #s
  local function varint()
    local v, mul = 0, 1
    while i <= n do
      local b = s:byte(i)
      i = i + 1
      v = v + (b % 128) * mul
      if b < 128 then return v end
      mul = mul * 128
      if mul > 2 ^ 56 then return nil end
    end
    return nil
  end
  while i <= n do
    local tag = varint()
    if not tag then return false end
    local number, wire = math.floor(tag / 8), tag % 8
    if wire == 0 then
      if not varint() then return false end
    elseif wire == 2 then
      local len = varint()
      if not len then return false end
      if number == field and len > 0 then return true end
      i = i + len
    elseif wire == 1 then
      i = i + 8
    elseif wire == 5 then
      i = i + 4
    else
      return false
    end
  end
  return false
end

local function mark_idempotent(handle)
  -- handle:headers() again: a header map taken before handle:body() is no longer valid.
  handle:headers():replace(IDEMPOTENT_HEADER, "1")
  handle:clearRouteCache()  -- the route was chosen before this header existed
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local method = headers:get(":method")
  if method == "GET" or method == "HEAD" or method == "OPTIONS" then return end
  local path = (headers:get(":path") or ""):gsub("%?.*$", "")
  if (headers:get("content-type") or ""):find("^application/grpc") then
    local field = GRPC_IDEMPOTENCY[path]
    if field then
      local body = handle:body()
      if body and proto_has(body:getBytes(0, body:length()), tonumber(field)) then
        mark_idempotent(handle)
      end
    end
    return
  end
  local rule
  for _, route in ipairs(ROUTES) do
    if route.method == method and path:find(route.pattern) then
      rule = route
      break
    end
  end
  if not rule then return end
  local body = handle:body()
  if not body or body:length() == 0 then return end
  local s = body:getBytes(0, body:length())
  local found = {}
  local i, err = value(s, ws(s, 1), rule.schema, 0, rule.idempotency_keys, found)
  if not i and err ~= "syntax" then
    -- The local reply mapper turns this into {"code": 400, "message": err}.
    handle:respond({ [":status"] = "400" }, err)
    return
  end
  if i and found.idempotent then mark_idempotent(handle) end
end
