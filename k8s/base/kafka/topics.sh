#!/bin/bash
# Makes the topics of docs/architecture.md §4 and their dead-letter twins what they should
# be: created if missing, and their settings applied even when a service created the
# topic first (the services create missing topics at start, without these settings).
# Run by the kafka-topics CronJob, so a re-run is always safe; replication and
# min.insync.replicas are the brokers' defaults (server.properties).
set -euo pipefail
KAFKA_HOME="${KAFKA_HOME:-/opt/kafka}"
ensure() {  # topic [config=value,...]
  local topic="$1" configs="${2:-}"
  local args=()
  if [ -n "$configs" ]; then
    IFS=, read -ra pairs <<< "$configs"
    for c in "${pairs[@]}"; do args+=(--config "$c"); done
  fi
  "$KAFKA_HOME/bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --create --if-not-exists \
    --topic "$topic" --partitions "$TOPIC_PARTITIONS" --replication-factor "$TOPIC_REPLICATION_FACTOR" "${args[@]}"
  if [ -n "$configs" ]; then
    "$KAFKA_HOME/bin/kafka-configs.sh" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --alter \
      --entity-type topics --entity-name "$topic" --add-config "$configs"
  fi
}
# The stock topic keeps every event (services/catalogue.py, KEPT_WHOLE): the book list and
# alert's notifications are rebuilt from it (docs/operations.md, "Rebuilding a read model
# from the log"). The reservation topic keeps the broker's 7 days: nothing is rebuilt from it.
ensure "$STOCK_TOPIC" "retention.ms=-1,retention.bytes=-1"
ensure "$RESERVATION_TOPIC"
# Dead letters wait for a person to look and replay them: kept DLQ_RETENTION_MS, not the
# broker's 7-day default.
for topic in "$STOCK_TOPIC" "$RESERVATION_TOPIC"; do
  ensure "$topic.dlq" "retention.ms=$DLQ_RETENTION_MS"
done
"$KAFKA_HOME/bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --describe
