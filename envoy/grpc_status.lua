-- Keeps each answer's gRPC status for the access log (its grpc_status field reads
-- %DYNAMIC_METADATA(bookrental:grpc_status)%). Envoy's own %GRPC_STATUS_NUMBER% reads the
-- answer as the client gets it, which has lost the status twice: the transcoder drops the
-- grpc-status header of a REST call's Trailers-Only error (so 409 ALREADY_EXISTS read as
-- UNKNOWN, 400 INVALID_ARGUMENT as INTERNAL), and the grpc_web filter moves a gRPC-Web
-- answer's trailers into its body (so every success read as UNKNOWN). This filter stands
-- between the transcoder and the router, where an answer still is what the service (or
-- the router) sent, and every one of Envoy's own replies passes it too.
-- tools/gateway/access_log.py prepends the status of Envoy's own replies to REST callers,
-- which carry none, by HTTP status (the one a gRPC-Web caller gets for the same reply):
--   GRPC_STATUS = {[401] = 16, [429] = 8, ...}; UNKNOWN = 2 (any other error status)

function envoy_on_response(handle)
  local headers = handle:headers()
  local status = headers:get("grpc-status")  -- a Trailers-Only answer, or Envoy's reply to a gRPC caller
  if not status then
    if (headers:get("content-type") or ""):find("^application/grpc") then
      local trailers = handle:trailers()  -- waits for the end of the answer (our RPCs are unary)
      status = trailers and trailers:get("grpc-status")
    else
      -- A REST caller's refusal by Envoy, or an answer that is no RPC's (the app's
      -- files, the documents: no status, as for a success).
      local code = tonumber(headers:get(":status")) or 0
      if code >= 400 then status = GRPC_STATUS[code] or UNKNOWN end
    end
  end
  status = tonumber(status)
  if status then
    handle:streamInfo():dynamicMetadata():set("bookrental", "grpc_status", status)
  end
end
