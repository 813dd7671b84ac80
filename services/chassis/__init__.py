"""The one chassis all three services share: settings, logs, database, outbox
relay, consumer loop with inbox and DLQ, gRPC server bootstrap."""
