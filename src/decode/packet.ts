/**
 * The decoder's output: one object, allocated once per decoder and overwritten for every packet
 * (gopacket's DecodingLayerParser pattern). Consumers copy the fields they keep.
 */

export const enum TcpFlag {
  FIN = 0x01,
  SYN = 0x02,
  RST = 0x04,
  PSH = 0x08,
  ACK = 0x10,
  URG = 0x20,
  ECE = 0x40,
  CWR = 0x80,
}

export const enum DecodeStatus {
  /** A TCP segment: every field below is valid. */
  Tcp = 0,
  /** IP carrying another protocol, or a non-IP frame (ARP, LLDP...). */
  NotTcp = 1,
  /** An IP fragment other than the first: its TCP header is elsewhere. */
  Fragment = 2,
  /** A link type this decoder does not know. */
  UnsupportedLink = 3,
  /** Header fields that contradict each other or the packet's length (counted, then skipped). */
  Malformed = 4,
  /** Snaplen cut the packet before the end of the TCP header. */
  Truncated = 5,
}

export class DecodedPacket {
  ipVersion: 4 | 6 = 4;
  /**
   * Addresses as four 32-bit words, big-endian word order. IPv4 is stored IPv4-mapped
   * (::ffff:a.b.c.d) so that flow keys and comparisons are the same code for both families.
   */
  readonly srcAddr = new Uint32Array(4);
  readonly dstAddr = new Uint32Array(4);
  /** IPv4 TTL or IPv6 hop limit. */
  ttl = 0;
  /** IPv4 identification; -1 for IPv6 (no such field outside a fragment header). */
  ipId = -1;

  srcPort = 0;
  dstPort = 0;
  /** Sequence and acknowledgement numbers as unsigned 32-bit values. */
  seq = 0;
  ack = 0;
  /** TcpFlag bits. */
  flags = 0;
  /** Raw (unscaled) window field. */
  window = 0;
  /** TCP header length in bytes, options included. */
  headerLength = 0;
  /**
   * Payload length on the wire, from the IP length fields, so snaplen-truncated captures (-s 96)
   * still count every byte.
   */
  payloadLength = 0;
  /** Payload bytes actually present in the capture: record.data[payloadOffset .. +capturedPayload). */
  payloadOffset = 0;
  capturedPayload = 0;

  /** TCP options; -1 / false / 0 when absent. */
  mss = -1;
  windowScale = -1;
  sackPermitted = false;
  /** Number of SACK blocks (0..4); left/right edges in sackBlocks[2i], sackBlocks[2i+1]. */
  sackCount = 0;
  readonly sackBlocks = new Uint32Array(8);
  hasTimestamp = false;
  tsVal = 0;
  tsEcr = 0;

  /** Resets every option field; the decoder calls it before reading a TCP header. */
  clearOptions(): void {
    this.mss = -1;
    this.windowScale = -1;
    this.sackPermitted = false;
    this.sackCount = 0;
    this.hasTimestamp = false;
    this.tsVal = 0;
    this.tsEcr = 0;
  }
}
