"""`make bench`: the reservation path measured beside this machine's own limit
(an echo RPC through the same Envoy) in one run. See docs/performance.md."""
