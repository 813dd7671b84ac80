#!/bin/bash
# A Kafka node: node.id is the pod's ordinal; the config is written to an emptyDir
# (the root filesystem is read-only). Paths are settable so tests/unit/test_k8s_kafka.py
# can run this script against stand-ins for the Kafka tools.
set -euo pipefail
KAFKA_HOME="${KAFKA_HOME:-/opt/kafka}"
CONFIG_DIR="${CONFIG_DIR:-/etc/kafka-config}"
WORK_DIR="${WORK_DIR:-/tmp}"
id="${HOSTNAME##*-}"
host="${HOSTNAME}.kafka-headless.${POD_NAMESPACE}.svc"
{ cat "$CONFIG_DIR/server.properties"
  echo "node.id=${id}"
  # A dynamic quorum's controllers advertise their own endpoint too.
  echo "advertised.listeners=PLAINTEXT://${host}:9092,CONTROLLER://${host}:9093"
  # The node's zone (a pod label copied from the node: see kafka.yaml): replicas of a
  # partition go to different zones.
  if [ -n "${RACK:-}" ]; then echo "broker.rack=${RACK}"; fi
} > "$WORK_DIR/server.properties"
prop() { sed -n "s/^$1=//p" "$WORK_DIR/server.properties"; }

if [ ! -f "$(prop log.dirs)/meta.properties" ]; then
  IFS=, read -ra controllers <<< "$(prop controller.quorum.bootstrap.servers)"
  quorum_exists=""
  for i in "${!controllers[@]}"; do
    [ "$i" = "$id" ] && continue
    if timeout 30 "$KAFKA_HOME/bin/kafka-metadata-quorum.sh" --bootstrap-controller "${controllers[$i]}" \
         describe --status >/dev/null 2>&1; then
      quorum_exists=yes
      break
    fi
  done
  if [ -n "$quorum_exists" ]; then
    # A running quorum and an empty volume: this node lost its log. It formats with a new
    # directory id and joins as an observer; auto.join adds it as a voter once caught up.
    "$KAFKA_HOME/bin/kafka-storage.sh" format -t "$CLUSTER_ID" -c "$WORK_DIR/server.properties" --no-initial-controllers
  else
    # No quorum answers: a new cluster. Every node starts from the same voter set.
    read -ra dirs <<< "$INITIAL_DIRECTORY_IDS"
    voters=""
    for i in "${!controllers[@]}"; do voters+="${voters:+,}${i}@${controllers[$i]}:${dirs[$i]}"; done
    "$KAFKA_HOME/bin/kafka-storage.sh" format -t "$CLUSTER_ID" -c "$WORK_DIR/server.properties" --initial-controllers "$voters"
  fi
fi
exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$WORK_DIR/server.properties"
