-- Refuses a REST request body that names a field its RPC's request message does not
-- have (400), instead of the transcoder's silent drop of unknown fields: a client's typo
-- ("quantitiy") or a field it hopes we honour ("user_id", "status") must not look
-- accepted. tools/envoy_config.py prepends ROUTES, generated from the descriptor set:
--   ROUTES = { {method = "POST", pattern = "^/v1/reservations$", schema = {fields = {...}}}, ... }
-- A schema is {fields = {name = true | schema}}: true accepts any value (scalars,
-- well-known types, maps); a nested schema checks a message field (or each element of a
-- repeated one). Both the proto name and the lowerCamelCase JSON name are listed.
-- A body that is not valid JSON is left to the transcoder (it answers 400 itself).

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
local function value(s, i, schema, depth)
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
      i, err = value(s, ws(s, i + 1), child, depth + 1)
      if not i then return nil, err end
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

function envoy_on_request(handle)
  local headers = handle:headers()
  local method = headers:get(":method")
  if method == "GET" or method == "HEAD" or method == "OPTIONS" then return end
  if (headers:get("content-type") or ""):find("^application/grpc") then return end
  local path = (headers:get(":path") or ""):gsub("%?.*$", "")
  local schema
  for _, route in ipairs(ROUTES) do
    if route.method == method and path:find(route.pattern) then
      schema = route.schema
      break
    end
  end
  if not schema then return end
  local body = handle:body()
  if not body or body:length() == 0 then return end
  local s = body:getBytes(0, body:length())
  local i, err = value(s, ws(s, 1), schema, 0)
  if not i and err ~= "syntax" then
    -- The local reply mapper turns this into {"code": 400, "message": err}.
    handle:respond({ [":status"] = "400" }, err)
  end
end
