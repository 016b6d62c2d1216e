import { DecodeStatus, type DecodedPacket } from './packet.js';
import { UNKNOWN_END, type Walk, missing, nextForProtocol, u16 } from './walk.js';

/**
 * RFC 8200 allows each extension header once (destination options twice), about six in all; a
 * longer chain is an attack or garbage, and the bound keeps a crafted chain from costing more.
 */
const MAX_EXTENSION_HEADERS = 8;

const HOP_BY_HOP = 0;
const ROUTING = 43;
const FRAGMENT = 44;
const AUTHENTICATION = 51;
const DESTINATION_OPTIONS = 60;

/** An IPv6 header and its extension header chain, up to the upper-layer protocol. */
export function ipv6(w: Walk, out: DecodedPacket): number {
  const d = w.data;
  const p = w.pos;
  if (p + 40 > w.capEnd) return missing(w, p + 40);
  if (d[p] >> 4 !== 6) return DecodeStatus.Malformed;
  out.ipVersion = 6;
  out.ttl = d[p + 7];
  out.ipId = -1;
  const src = out.srcAddr;
  const dst = out.dstAddr;
  for (let i = 0; i < 4; i++) {
    src[i] = u16(d, p + 8 + 4 * i) * 0x10000 + u16(d, p + 10 + 4 * i);
    dst[i] = u16(d, p + 24 + 4 * i) * 0x10000 + u16(d, p + 26 + 4 * i);
  }

  const payloadLength = u16(d, p + 4);
  // Payload length 0 is a jumbogram, whose length is in a hop-by-hop option; Linux BIG TCP
  // captures may lack that option, leaving the wire length as the only length
  const jumbo = payloadLength === 0;
  let end = jumbo ? w.wireEnd : p + 40 + payloadLength;
  // Inside a first fragment the enclosed packet goes on into the next fragments
  const inFragment = w.fragEnd >= 0;

  let next = d[p + 6];
  let q = p + 40;
  for (let count = 0; ; count++) {
    if (next !== HOP_BY_HOP && next !== ROUTING && next !== FRAGMENT && next !== AUTHENTICATION &&
        next !== DESTINATION_OPTIONS) {
      break;
    }
    // Hop-by-hop options must come first (RFC 8200 section 4.1)
    if (count === MAX_EXTENSION_HEADERS || (next === HOP_BY_HOP && count !== 0)) return DecodeStatus.Malformed;
    if (q + 8 > w.capEnd) return missing(w, q + 8);
    let length: number;
    if (next === FRAGMENT) {
      length = 8;
      out.ipId = u16(d, q + 4) * 0x10000 + u16(d, q + 6);
      const offsetFlags = u16(d, q + 2);
      if ((offsetFlags & 0xfff8) !== 0) return DecodeStatus.Fragment;
      if ((offsetFlags & 1) !== 0 && (w.fragEnd < 0 || end < w.fragEnd)) w.fragEnd = end;
    } else if (next === AUTHENTICATION) {
      length = (d[q + 1] + 2) << 2;
    } else {
      length = (d[q + 1] + 1) << 3;
      if (next === HOP_BY_HOP && jumbo) {
        const jumboLength = jumboPayloadLength(d, q + 2, Math.min(q + length, w.capEnd));
        if (jumboLength >= 0) end = p + 40 + jumboLength;
      }
    }
    if (q + length > end) return DecodeStatus.Malformed;
    next = d[q];
    q += length;
  }
  if (end === UNKNOWN_END) return DecodeStatus.Malformed;
  // As for IPv4: the IP length is believed over a frame that lost bytes
  if (end > w.wireEnd && !inFragment) w.shortFrame = true;
  w.pos = q;
  w.wireEnd = end;
  if (end < w.capEnd) w.capEnd = end;
  return nextForProtocol(next);
}

const PAD1 = 0;
const JUMBO_PAYLOAD = 0xc2;

/** The Jumbo Payload option (RFC 2675) among hop-by-hop options in [from, to), or -1. */
function jumboPayloadLength(d: Uint8Array, from: number, to: number): number {
  let i = from;
  while (i + 2 <= to) {
    const type = d[i];
    if (type === PAD1) {
      i++;
      continue;
    }
    const length = d[i + 1];
    if (type === JUMBO_PAYLOAD && length === 4 && i + 6 <= to) return u16(d, i + 2) * 0x10000 + u16(d, i + 4);
    i += 2 + length;
  }
  return -1;
}
