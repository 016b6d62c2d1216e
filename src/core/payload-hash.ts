import type { DecodedPacket } from '../decode/packet.js';

/**
 * 32-bit FNV-1a over a segment's payload bytes as captured: enough to recognise the same bytes in
 * two captures (correlation), cheap, and allocation-free. 0 means "no hash": an empty payload, or
 * one the capture cut short (snaplen), whose hash would not compare with a full copy elsewhere.
 */
export function payloadHash(data: Uint8Array, pkt: DecodedPacket): number {
  const length = pkt.payloadLength;
  if (length === 0 || pkt.capturedPayload < length) return 0;
  const start = pkt.payloadOffset;
  const end = start + length;
  if (end > data.length) return 0;
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ data[i], 0x01000193);
  h >>>= 0;
  return h === 0 ? 1 : h;
}
