#!/usr/bin/env bash
# Writes test/decode/reference/*.tsv: tshark's reading of every TCP header in the test captures,
# which reference.test.ts compares with the decoder field by field, so the tests need no tshark.
# Sources: each capture of the public corpus (../shared/corpus, or $CORPUS) that tshark reads
# without error and that holds TCP, except echo-connections.pcap.gz (82,582 packets of one kind);
# and the decoder's own captures in test/decode/captures/ (make-captures.sh).
#
# Preferences, and why:
#   tcp.relative_sequence_numbers:FALSE  raw sequence numbers and SACK edges, as on the wire
#   tcp.analyze_sequence_numbers:FALSE   no analysis fields; nothing here depends on them
#   ip.defragment:FALSE, ipv6.defragment:FALSE
#                                        the TCP header is read in the first fragment, as the
#                                        decoder does, not in the frame completing reassembly
# The filter drops ICMP errors, whose quoted TCP header is not a segment of the capture.
# frame.protocols tells which IP header is innermost when packets are tunnelled.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
corpus=${CORPUS:-$here/../../../shared/corpus}
out=$here/reference
rm -rf "$out"
mkdir -p "$out"

fields=(frame.number frame.len frame.cap_len frame.protocols ip.src ip.dst ip.ttl ip.id ip.len ip.hdr_len
  ipv6.src ipv6.dst ipv6.hlim
  tcp.srcport tcp.dstport tcp.seq_raw tcp.ack_raw tcp.flags tcp.window_size_value tcp.hdr_len tcp.len
  tcp.options.mss_val tcp.options.wscale.shift tcp.options.sack_perm tcp.options.sack_le
  tcp.options.sack_re tcp.options.timestamp.tsval tcp.options.timestamp.tsecr)

# reference SOURCE-LABEL FILE
reference() {
  local label=$1 file=$2
  {
    echo "# $label"
    tshark -n -r "$file" \
      -o tcp.relative_sequence_numbers:FALSE -o tcp.analyze_sequence_numbers:FALSE \
      -o ip.defragment:FALSE -o ipv6.defragment:FALSE \
      -Y 'tcp && !icmp && !icmpv6' \
      -T fields -E header=y -E separator=/t -E aggregator=, "${fields[@]/#/-e}"
  } > "$out/$(basename "$file").tsv"
}

# Columns of expected.tsv: 1 path, 5 packets, 6 tcp_packets, 14 tshark_error
awk -F'\t' 'NR > 1 && $14 == "" && $6 > 0 && $1 !~ /echo-connections/ { print $1 }' "$corpus/expected.tsv" |
  while read -r path; do reference "corpus: $path" "$corpus/$path"; done
for file in "$here"/captures/*; do reference "captures: $(basename "$file")" "$file"; done
tshark --version | head -1 > "$out/TSHARK_VERSION"
