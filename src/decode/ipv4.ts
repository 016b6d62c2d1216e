import { DecodeStatus, type DecodedPacket } from './packet.js';
import { UNKNOWN_END, type Walk, missing, nextForProtocol, u16 } from './walk.js';

/**
 * An IPv4 header. The total length, not the captured length, bounds the payload: Ethernet padding
 * is not payload, and a snaplen-cut packet still reports every byte it carried.
 */
export function ipv4(w: Walk, out: DecodedPacket): number {
  const d = w.data;
  const p = w.pos;
  if (p + 20 > w.capEnd) return missing(w, p + 20);
  if (d[p] >> 4 !== 4) return DecodeStatus.Malformed;
  const headerLength = (d[p] & 0x0f) << 2;
  let totalLength = u16(d, p + 2);
  if (totalLength === 0) {
    // Segmentation offload and Linux BIG TCP hand the capture one packet larger than 64 KiB with
    // total length 0; the wire length is then the only length there is
    if (w.wireEnd === UNKNOWN_END) return DecodeStatus.Malformed;
    totalLength = w.wireEnd - p;
  }
  if (headerLength < 20 || totalLength < headerLength) return DecodeStatus.Malformed;
  const end = p + totalLength;
  // Inside a first fragment the enclosed packet goes on into the next fragments. Otherwise the
  // frame lost bytes (an edited file, a driver reporting the wrong length); like tshark, the IP
  // header is believed, so the segment keeps its place in the sequence space
  if (end > w.wireEnd && w.fragEnd < 0) w.shortFrame = true;
  if (p + headerLength > w.capEnd) return missing(w, p + headerLength);

  out.ipVersion = 4;
  out.ttl = d[p + 8];
  out.ipId = u16(d, p + 4);
  const src = out.srcAddr;
  src[0] = 0;
  src[1] = 0;
  src[2] = 0xffff;
  src[3] = u16(d, p + 12) * 0x10000 + u16(d, p + 14);
  const dst = out.dstAddr;
  dst[0] = 0;
  dst[1] = 0;
  dst[2] = 0xffff;
  dst[3] = u16(d, p + 16) * 0x10000 + u16(d, p + 18);

  const fragment = u16(d, p + 6);
  if ((fragment & 0x1fff) !== 0) return DecodeStatus.Fragment;
  // A first fragment still holds the transport header; its payload length is this fragment's
  if ((fragment & 0x2000) !== 0 && (w.fragEnd < 0 || end < w.fragEnd)) w.fragEnd = end;
  w.pos = p + headerLength;
  w.wireEnd = end;
  if (end < w.capEnd) w.capEnd = end;
  return nextForProtocol(d[p + 9]);
}
