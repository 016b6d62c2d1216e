import { DecodeStatus } from './packet.js';
import { Layer, type Walk, missing, u16 } from './walk.js';

const ERSPAN_2 = 0x88be;
const ERSPAN_3 = 0x22eb;

/**
 * GRE version 0 (RFC 2784, 2890), whose protocol field is an ethertype. Version 1 is PPTP's
 * enhanced GRE carrying PPP, and routing-present headers are RFC 1701 relics: neither is followed.
 *
 * ERSPAN sessions mirror a switch port to a collector inside GRE. The mirrored frame is the
 * conversation worth diagnosing (the GRE envelope is only the mirror's transport), so the walk
 * goes on into it, as tshark does.
 */
export function gre(w: Walk): number {
  const d = w.data;
  const p = w.pos;
  if (p + 4 > w.capEnd) return missing(w, p + 4);
  const flags = u16(d, p);
  if ((flags & 0x0007) !== 0 || (flags & 0x4000) !== 0) return DecodeStatus.NotTcp;
  const sequenced = (flags & 0x1000) !== 0;
  let q = p + 4;
  if ((flags & 0x8000) !== 0) q += 4;
  if ((flags & 0x2000) !== 0) q += 4;
  if (sequenced) q += 4;
  const protocol = u16(d, p + 2);
  if (protocol === ERSPAN_2) {
    // Type II has an 8-byte header and sets the GRE sequence bit; type I has neither
    if (sequenced) q += 8;
    return mirroredFrame(w, q);
  }
  if (protocol === ERSPAN_3) {
    if (q + 12 > w.capEnd) return missing(w, q + 12);
    // Frame type 0 is Ethernet; the O flag adds an 8-byte platform-specific subheader
    if (((d[q + 10] >> 2) & 0x1f) !== 0) return DecodeStatus.NotTcp;
    return mirroredFrame(w, q + ((d[q + 11] & 1) !== 0 ? 20 : 12));
  }
  if (q > w.capEnd) return missing(w, q);
  w.ethertype = protocol;
  w.pos = q;
  return Layer.Ethertype;
}

function mirroredFrame(w: Walk, at: number): number {
  if (at > w.capEnd) return missing(w, at);
  w.pos = at;
  return Layer.Ethernet;
}
