"""The gateway's Envoy config by concern, put together by tools/envoy_config.render():

- options: what a rendering depends on (ports, replicas, limits, timeouts, JWKS, TLS);
- descriptor: the descriptor set, parsed once per rendering;
- clusters: a cluster per service (health checks, outlier detection, circuit breakers);
- routes: a route per RPC (timeouts, retries, rate limits);
- transcoding: the transcoder's services and strict_json.lua's request schemas;
- auth: jwt_authn's rules (the public RPCs, from protos/) and the JWKS source;
- listeners: the TLS listener and the API documents served at /docs/;
- access_log: what envoy/grpc_status.lua needs to give each access-log line its gRPC status.
"""
