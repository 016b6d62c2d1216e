#!/usr/bin/env bash
# bench/live-flood.sh — how fast `connscope live` keeps up, and what it loses when it cannot.
#
# Floods a veth pair between two throw-away network namespaces (cs-live-<pid>-tx / -rx, addresses in
# 198.19.0.0/24, no link to anything else) with a bounded number of small TCP segments sent from a
# raw socket, while `connscope live` captures on the receiving end. Reports, per backend and rate:
# packets sent, packets the interface received, packets connscope analysed, its drop/loss counters,
# and the CPU time of connscope (analysing process + capture process or tcpdump).
#
#   sudo bench/live-flood.sh                          # 200000 packets, backends cap and tcpdump, full speed
#   sudo bench/live-flood.sh -n 100000 -r 50000 -b cap   # 100k packets paced at 50k packets/s
#   options: -n PACKETS  -r RATE[,RATE...] (0 = as fast as the sender goes)  -b BACKEND[,BACKEND]
#            -f FLOWS  -B MiB (connscope --buffer-size)  -o (offloads off: MTU-sized ring frames)
#
# Needs root, ip, iptables, python3, node (connscope built: npm run build), tcpdump for that backend.
# Not a test: figures depend on the machine. Everything it starts is killed, and the namespaces
# deleted, on any exit.
set -euo pipefail

PACKETS=200000
RATES=(0)
BACKENDS=(cap tcpdump)
FLOWS=256
BUFFER=
OFFLOAD=on
while getopts 'n:r:b:f:B:oh' opt; do
  case $opt in
    n) PACKETS=$OPTARG ;;
    r) IFS=, read -r -a RATES <<<"$OPTARG" ;;
    b) IFS=, read -r -a BACKENDS <<<"$OPTARG" ;;
    f) FLOWS=$OPTARG ;;
    B) BUFFER=$OPTARG ;;
    o) OFFLOAD=off ;;
    *) sed -n '2,19p' "$0"; exit 2 ;;
  esac
done
(( PACKETS > 0 && PACKETS <= 5000000 )) || { echo "packets must be 1..5000000" >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLI=$ROOT/bin/connscope.js
[[ $(id -u) == 0 ]] || { echo "needs root (network namespaces, capture)" >&2; exit 2; }
[[ -f $ROOT/dist/src/cli/main.js ]] || { echo "build first: npm run build" >&2; exit 2; }
PY=$(command -v python3)

TX=cs-live-$$-tx
RX=cs-live-$$-rx
TMP=$(mktemp -d /tmp/cs-live-bench.XXXXXX)
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for ns in "$TX" "$RX"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ip netns add "$TX"
ip netns add "$RX"
ip link add cs-live-tx netns "$TX" type veth peer name cs-live-rx netns "$RX"
for spec in "$TX cs-live-tx 198.19.0.1" "$RX cs-live-rx 198.19.0.2"; do
  read -r ns ifc addr <<<"$spec"
  ip -n "$ns" link set lo up
  # Offloads stay on by default, as on a real NIC: libpcap then sizes ring frames for 64 KiB
  # (GRO) packets, so the ring holds few packets. -o turns them off (MTU-sized frames).
  [[ $OFFLOAD == off ]] && { ip netns exec "$ns" ethtool -K "$ifc" tso off gso off gro off >/dev/null 2>&1 || true; }
  ip -n "$ns" addr add "$addr/24" dev "$ifc"
  ip -n "$ns" link set "$ifc" up
done
# The receiver must not answer the flood with RSTs (the capture sees packets before netfilter).
ip netns exec "$RX" iptables -A INPUT -p tcp -j DROP
RX_MAC=$(ip netns exec "$RX" cat /sys/class/net/cs-live-rx/address)
TX_MAC=$(ip netns exec "$TX" cat /sys/class/net/cs-live-tx/address)

# The sender: precomputed Ethernet/IPv4/TCP frames (FLOWS connections, 16 payload bytes each,
# sequence numbers advancing), sent with one send() each on an AF_PACKET socket, optionally paced.
cat >"$TMP/flood.py" <<'EOF'
import socket, struct, sys, time
iface, src_mac, dst_mac, count, rate, flows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
mac = lambda s: bytes.fromhex(s.replace(':', ''))
eth = mac(dst_mac) + mac(src_mac) + b'\x08\x00'
src, dst = socket.inet_aton('198.19.0.1'), socket.inet_aton('198.19.0.2')
payload = b'p' * 16
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
frames = []
seqs = [1000] * flows
for i in range(count):
    f = i % flows
    sport = 20000 + f
    tcp = struct.pack('!HHIIBBHHH', sport, 80, seqs[f], 1, 5 << 4, 0x18, 65535, 0, 0) + payload
    tcp = tcp[:16] + struct.pack('!H', csum(src + dst + struct.pack('!BBH', 0, 6, len(tcp)) + tcp)) + tcp[18:]
    seqs[f] += len(payload)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), i & 0xffff, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    frames.append(eth + ip + tcp)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
send = s.send
t0 = time.perf_counter()
if rate <= 0:
    for fr in frames: send(fr)
else:
    batch = max(1, int(rate // 1000))
    for i in range(0, count, batch):
        for fr in frames[i:i + batch]: send(fr)
        ahead = t0 + (i + batch) / rate - time.perf_counter()
        if ahead > 0: time.sleep(ahead)
t = time.perf_counter() - t0
print('%d %.6f' % (count, t))
EOF

cpu_ticks() { # total utime+stime (clock ticks) of a process and its descendants
  local pid=$1 total=0 t c
  [[ -r /proc/$pid/stat ]] || { echo 0; return; }
  t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
  total=$((total + t))
  for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do total=$((total + $(cpu_ticks "$c"))); done
  echo "$total"
}
HZ=$(getconf CLK_TCK)
rx_packets() { ip netns exec "$RX" cat /sys/class/net/cs-live-rx/statistics/rx_packets; }

printf '%-8s %7s %9s %9s %9s %9s %9s %9s %8s %8s %7s %8s\n' backend rate sent sent/s iface_rx analysed analysed% peak/s not_capt drops cpu_s us/pkt
run_one() {
  local backend=$1 rate=$2 out=$TMP/live-$1-$2.ndjson err=$TMP/live-$1-$2.err
  ip netns exec "$RX" node "$CLI" live --backend "$backend" -i cs-live-rx --json --duration 600 --no-drop-privileges \
    --flows none ${BUFFER:+--buffer-size "$BUFFER"} >"$out" 2>"$err" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do grep -q '"type":"start"' "$out" 2>/dev/null && break; sleep 0.1; done
  grep -q '"type":"start"' "$out" || { echo "connscope did not start:" >&2; cat "$err" >&2; exit 1; }
  local rx0 cpu0 rx1 cpu1 sent secs
  rx0=$(rx_packets)
  cpu0=$(cpu_ticks "$pid")
  local t0; t0=$(date +%s.%N)
  read -r sent secs < <(ip netns exec "$TX" "$PY" "$TMP/flood.py" cs-live-tx "$TX_MAC" "$RX_MAC" "$PACKETS" "$rate" "$FLOWS")
  # Let the capture drain what it buffered (bounded), then stop it.
  local last=-1 now
  for _ in $(seq 60); do
    sleep 0.5
    now=$(grep '"type":"stats"' "$out" | tail -1 | sed -E 's/.*"packets":([0-9]+).*/\1/')
    [[ $now == "$last" ]] && break
    last=$now
  done
  cpu1=$(cpu_ticks "$pid")
  local t1; t1=$(date +%s.%N)
  rx1=$(rx_packets)
  kill -INT "$pid"
  wait "$pid" || true
  local analysed notcapt drops
  analysed=$(tail -1 "$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).inputs[0].tcpPackets))')
  notcapt=$(grep -oE 'TCP segments not captured [0-9,]+' "$err" | grep -oE "[0-9,]+$" | tr -d , || true)
  drops=$(grep -oE 'kernel drops [0-9,]+|[0-9,]+ dropped by connscope' "$err" | grep -oE "[0-9,]+" | tr -d , | head -1 || true)
  local cpu; cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz}')
  # Highest one-second analysis rate seen in the stats events.
  local peak; peak=$(grep '"type":"stats"' "$out" | sed -E 's/.*"packetsPerSecond":([0-9.e+]+).*/\1/' | sort -g | tail -1)
  printf '%-8s %7s %9d %9.0f %9d %9d %8.1f%% %9.0f %8s %8s %7s %8.2f\n' "$backend" "$([[ $rate == 0 ]] && echo max || echo "$rate")" \
    "$sent" "$(awk -v n="$sent" -v s="$secs" 'BEGIN{print n/s}')" "$((rx1 - rx0))" "$analysed" \
    "$(awk -v a="$analysed" -v n="$sent" 'BEGIN{print 100*a/n}')" "${peak:-0}" "${notcapt:-0}" "${drops:-n/a}" "$cpu" \
    "$(awk -v c="$cpu" -v a="$analysed" 'BEGIN{print (a > 0 ? 1e6*c/a : 0)}')"
}

for backend in "${BACKENDS[@]}"; do
  for rate in "${RATES[@]}"; do run_one "$backend" "$rate"; done
done
cat <<NOTE
sent/s: the raw-socket sender's own rate. iface_rx: the receiving veth's rx_packets. analysed: TCP packets in
connscope's final report. peak/s: highest one-second analysis rate in the stats events. not_capt: TCP sequence
gaps seen (the loss measure with cap, which has no kernel drop counter). drops: tcpdump's kernel drops, or packets
the cap capture process dropped because analysis fell 256 MiB behind. cpu_s: CPU time of connscope's processes
(analysis + capture process or tcpdump) during flood and drain; us/pkt: that per analysed packet.
$(nproc) cores here; the sender uses one of them.
NOTE
