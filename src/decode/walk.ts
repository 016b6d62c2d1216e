import { DecodeStatus } from './packet.js';

/**
 * What a layer decoder returns: either a final DecodeStatus (0..5) or the header the decoder loop
 * reads next. One number space lets each layer hand over without allocating a result object.
 */
export const enum Layer {
  First = 16,
  Ethernet = 16,
  /** The protocol is in Walk.ethertype (Ethernet, SLL, SNAP, GRE and PPP all name it this way). */
  Ethertype = 17,
  Ipv4 = 18,
  Ipv6 = 19,
  Gre = 20,
  Tcp = 21,
}

/**
 * Stands in for the wire end when the link layer cannot say how long the packet was (NFLOG's copy
 * range cuts packets without recording their length). A small integer so the field stays a Smi.
 */
export const UNKNOWN_END = 0x3fffffff;

/**
 * The decoder's position in one packet, shared by the layer decoders and overwritten per packet.
 * Offsets are absolute indexes into `data`.
 */
export class Walk {
  data: Uint8Array = new Uint8Array(0);
  /** Start of the header to read next. */
  pos = 0;
  /** End of the bytes the current layer may read: the capture, clipped by every enclosing IP length. */
  capEnd = 0;
  /** End of the captured bytes. */
  snapEnd = 0;
  /** End of the current layer on the wire, as its enclosing headers declare it. */
  wireEnd = 0;
  /**
   * End of a first IP fragment whose datagram continues in later fragments; -1 when not inside one.
   * Bytes past it exist on the wire but not in this packet.
   */
  fragEnd = -1;
  /** The capture kept fewer bytes than the wire carried (snaplen, NFLOG copy range). */
  cut = false;
  /** The protocol for Layer.Ethertype. */
  ethertype = 0;
  vlanTags = 0;
  /** An IP header claimed more bytes than the frame carried on the wire. */
  shortFrame = false;
  /** The TCP option list had an impossible length: options after the damage were not read. */
  optionsDamaged = false;
}

/**
 * The verdict when a header needs bytes up to `need` that are not there: a fragment boundary means
 * the header is in another fragment, a cut capture means snaplen, anything else is a length field
 * promising more than the packet holds.
 */
export function missing(w: Walk, need: number): DecodeStatus {
  if (w.fragEnd >= 0 && need > w.fragEnd) return DecodeStatus.Fragment;
  if (w.cut && need > w.snapEnd) return DecodeStatus.Truncated;
  return DecodeStatus.Malformed;
}

/**
 * A big-endian 16-bit field. There is deliberately no 32-bit twin: a value above 2^30 is not a
 * small integer, so a helper the optimizer does not inline returns it boxed in a new heap number,
 * one allocation per read. `u16(d, i) * 0x10000 + u16(d, i + 2)` keeps the arithmetic in the caller.
 */
export function u16(d: Uint8Array, i: number): number {
  return (d[i] << 8) | d[i + 1];
}

/** IANA protocol numbers: the IP layers hand TCP and tunnels on, everything else ends the walk. */
export function nextForProtocol(protocol: number): number {
  switch (protocol) {
    case 6: return Layer.Tcp;
    case 4: return Layer.Ipv4;
    case 41: return Layer.Ipv6;
    case 47: return Layer.Gre;
    default: return DecodeStatus.NotTcp;
  }
}

/** Raw IP and MPLS payloads carry no protocol field: the IP version nibble is the only clue. */
export function ipByVersion(w: Walk, otherwise: DecodeStatus): number {
  if (w.pos >= w.capEnd) return missing(w, w.pos + 1);
  const version = w.data[w.pos] >> 4;
  if (version === 4) return Layer.Ipv4;
  if (version === 6) return Layer.Ipv6;
  return otherwise;
}
