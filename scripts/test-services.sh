#!/usr/bin/env bash
# What `npm test` needs besides node_modules, made ready when it is not: Debian's packages (Chromium
# for the browser tests, nginx, Python's Socket.IO and WebSocket clients), PostgreSQL and Redis on
# their usual loopback ports, and a Redis Cluster of three masters on 7101-7103. Each step is skipped
# when what it provides is already there, so a second run costs about a second.
set -euo pipefail
started=$(date +%s)
log() { echo "[test-services +$(( $(date +%s) - started ))s] $*"; }

# --- Debian packages the tests use -------------------------------------------------------------
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v g++ >/dev/null 2>&1 || need+=(g++ make)
# The helpdesk's browser tests drive Debian's Chromium through playwright-core (never a downloaded browser).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# test/nginx.test.ts runs three nodes behind Debian's nginx, configured as docs/deployment.md says.
command -v nginx >/dev/null 2>&1 || need+=(nginx)
# test/python-clients.test.ts runs docs/examples/python with Debian's Python and these libraries.
/usr/bin/python3 -c 'import socketio, websocket, requests' >/dev/null 2>&1 ||
  need+=(python3-socketio python3-websocket python3-requests)
if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "the tests need these Debian packages: ${need[*]} (apt-get install them as root)"; exit 1
  fi
  log "installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- services ----------------------------------------------------------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start || true
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
for i in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then break; fi
  [ "$i" = 60 ] && { echo "PostgreSQL or Redis did not come up"; exit 1; }
  sleep 1
done
psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null
log "PostgreSQL and Redis are up"

# A Redis Cluster of three masters on 7101-7103: the cluster-mode tests run once on the standalone
# Redis and once on it (sharded pub/sub, one script per slot). Left alone when it is already up.
cluster_ports=(7101 7102 7103)
cluster_ok() { redis-cli -h 127.0.0.1 -p 7101 cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }
if ! cluster_ok; then
  cluster_dir=""
  for port in "${cluster_ports[@]}"; do
    redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && continue
    [ -n "$cluster_dir" ] || cluster_dir=$(mktemp -d /tmp/tether-redis-cluster.XXXXXX)
    log "starting Redis Cluster node $port in $cluster_dir"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$cluster_dir/nodes-$port.conf" --save "" --appendonly no --daemonize yes \
      --dir "$cluster_dir" --logfile "$cluster_dir/redis-$port.log"
  done
  for port in "${cluster_ports[@]}"; do
    for i in $(seq 1 30); do
      redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break
      [ "$i" = 30 ] && { echo "Redis Cluster node $port did not come up"; exit 1; }
      sleep 1
    done
  done
  # Join the nodes unless they already hold slots (a cluster created earlier, still converging).
  if redis-cli -h 127.0.0.1 -p 7101 cluster info | grep -q '^cluster_slots_assigned:0'; then
    log "creating the Redis Cluster"
    if ! redis-cli --cluster create 127.0.0.1:7101 127.0.0.1:7102 127.0.0.1:7103 --cluster-replicas 0 \
      --cluster-yes >/tmp/tether-redis-cluster-create.log 2>&1; then
      tail -n 20 /tmp/tether-redis-cluster-create.log
      echo "redis-cli --cluster create failed"; exit 1
    fi
  fi
fi
for i in $(seq 1 60); do
  cluster_ok && break
  [ "$i" = 60 ] && { echo "the Redis Cluster did not reach cluster_state:ok"; exit 1; }
  sleep 1
done
log "Redis Cluster is up (127.0.0.1:7101-7103)"
