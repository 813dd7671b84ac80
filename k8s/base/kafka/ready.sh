#!/bin/bash
# Readiness of a Kafka node: it answers, and it is in the ISR of every partition it
# holds a replica of. A restarted broker is not ready until it has caught up, so a
# rolling restart (one pod at a time, waiting for ready) never takes a second replica
# of a partition away while the first is still behind: min.insync.replicas=2 holds.
# Another broker being down leaves this one ready (it is still in sync).
set -uo pipefail
KAFKA_HOME="${KAFKA_HOME:-/opt/kafka}"
id="${HOSTNAME##*-}"
# A small heap of its own: the broker's KAFKA_HEAP_OPTS (gigabytes) is in the environment.
out="$(KAFKA_HEAP_OPTS=-Xmx128m "$KAFKA_HOME/bin/kafka-topics.sh" --bootstrap-server localhost:9092 \
         --describe --under-replicated-partitions)" || { echo "broker does not answer"; exit 1; }
awk -v id="$id" '
  { replicas = ""; isr = ""
    for (i = 1; i < NF; i++) { if ($i == "Replicas:") replicas = $(i + 1); if ($i == "Isr:") isr = $(i + 1) }
    if (("," replicas ",") ~ ("," id ",") && ("," isr ",") !~ ("," id ",")) { print "not in sync: " $0; behind = 1 } }
  END { exit behind }' <<< "$out"
