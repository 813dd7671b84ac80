"""The one chassis all three services share, and knows none of their domains:
settings, logs, database, unit of work with its outbox and relay, consumer loop
with inbox and DLQ, caller identity, gRPC server bootstrap."""
