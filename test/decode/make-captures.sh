#!/usr/bin/env bash
# Makes the decoder's own test captures in test/decode/captures/ with tcpdump, for link types and
# TCP features the public corpus lacks: Linux cooked v1 and v2 (SLL, SLL2), a snaplen of 96 bytes,
# and SACK options with four blocks. Traffic is python's http.server and curl on the loopback
# interface of a private network namespace (unshare -n, so root is needed): nothing leaves it and
# nothing on the machine's own interfaces is touched. Run it again only to replace the captures;
# then run make-reference.sh, since the tests compare against tshark's reading of these files.
set -euo pipefail
[[ ${1:-} == inside ]] || exec unshare -n "$0" inside

here=$(cd "$(dirname "$0")" && pwd)
out=$here/captures
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$out"
head -c 20000 /dev/urandom > "$work/small"
head -c 100000 /dev/urandom > "$work/large"

ip link set lo up
# A real-world MTU and no segmentation offload, so the capture holds wire-sized segments rather
# than a few 64 KiB ones
ip link set lo mtu 1500
ethtool -K lo tso off gso off gro off >/dev/null
(cd "$work" && exec python3 -m http.server 8080 --bind :: >/dev/null 2>&1) &
sleep 1

# capture NAME FILE TCPDUMP-ARGS... : runs tcpdump around an IPv4 and an IPv6 download of FILE
capture() {
  local name=$1 file=$2
  shift 2
  tcpdump --immediate-mode -B 65536 -w "$out/$name" "$@" 'tcp port 8080' 2>/dev/null &
  local pid=$!
  sleep 1
  # At loopback speed the burst overruns the capture buffer and tcpdump drops packets
  curl -s --limit-rate 1M -o /dev/null "http://127.0.0.1:8080/$file"
  curl -s --limit-rate 1M -o /dev/null "http://[::1]:8080/$file"
  sleep 1
  kill -INT $pid
  wait $pid || true
}

capture sll2-any.pcap small -i any -y LINUX_SLL2
capture sll-any.pcap small -i any -y LINUX_SLL
capture snaplen-96.pcap small -i lo -s 96

# Four SACK blocks only fit without the timestamp option (40 option bytes); dropping every fourth
# packet from the server at the receiver leaves enough holes to fill them. The capture point on lo
# is before the drop, so the lost segments are in the file and their retransmissions follow.
sysctl -q -w net.ipv4.tcp_timestamps=0
nft add table inet lossy
nft add chain inet lossy input '{ type filter hook input priority 0; }'
nft add rule inet lossy input tcp sport 8080 numgen inc mod 4 == 0 drop
capture sack-blocks.pcap large -i lo
