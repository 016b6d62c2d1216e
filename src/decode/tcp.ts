import { DecodeStatus, type DecodedPacket } from './packet.js';
import { readTcpOptions } from './tcp-options.js';
import { type Walk, missing, u16 } from './walk.js';

/**
 * The TCP header at w.pos, inside an IP payload that ends at w.wireEnd. A header reaching past
 * the IP payload is damage, unless the payload is a first fragment (the header goes on in the next
 * one). Options cut off by snaplen are read as far as they go: the fixed header is what matters.
 */
export function tcp(w: Walk, out: DecodedPacket): DecodeStatus {
  const d = w.data;
  const p = w.pos;
  const wireEnd = w.wireEnd;
  if (p + 20 > wireEnd) return w.fragEnd === wireEnd ? DecodeStatus.Fragment : DecodeStatus.Malformed;
  if (p + 20 > w.capEnd) return missing(w, p + 20);
  const headerLength = (d[p + 12] >> 4) << 2;
  if (headerLength < 20) return DecodeStatus.Malformed;
  const payloadOffset = p + headerLength;
  if (payloadOffset > wireEnd) return w.fragEnd === wireEnd ? DecodeStatus.Fragment : DecodeStatus.Malformed;

  out.srcPort = u16(d, p);
  out.dstPort = u16(d, p + 2);
  out.seq = u16(d, p + 4) * 0x10000 + u16(d, p + 6);
  out.ack = u16(d, p + 8) * 0x10000 + u16(d, p + 10);
  out.flags = d[p + 13];
  out.window = u16(d, p + 14);
  out.headerLength = headerLength;
  out.payloadLength = wireEnd - payloadOffset;
  out.payloadOffset = payloadOffset;
  out.capturedPayload = w.capEnd > payloadOffset ? w.capEnd - payloadOffset : 0;
  out.clearOptions();
  if (headerLength > 20 && !readTcpOptions(d, p + 20, payloadOffset, w.capEnd, out)) w.optionsDamaged = true;
  return DecodeStatus.Tcp;
}
