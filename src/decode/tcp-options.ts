import type { DecodedPacket } from './packet.js';
import { u16 } from './walk.js';

const EOL = 0;
const NOP = 1;
const MSS = 2;
const WINDOW_SCALE = 3;
const SACK_PERMITTED = 4;
const SACK = 5;
const TIMESTAMPS = 8;

/**
 * Reads the options in [start, headerEnd), of which the capture holds [start, available), into
 * `out` (cleared by the caller). An option with the wrong length for its kind is skipped, as the
 * receiver would skip it.
 *
 * Returns false when the list is damaged: a length of 0 or 1, or an option running past the
 * header. Nothing after that point can be located, so reading stops there, but the segment is
 * kept: its fixed header is intact, and Linux (tcp_parse_options) and Wireshark treat it the
 * same way, so the conversation stays whole and counts agree with tshark.
 */
export function readTcpOptions(d: Uint8Array, start: number, headerEnd: number, available: number,
                               out: DecodedPacket): boolean {
  let i = start;
  const limit = headerEnd < available ? headerEnd : available;
  while (i < limit) {
    const kind = d[i];
    if (kind === EOL) return true;
    if (kind === NOP) {
      i++;
      continue;
    }
    if (i + 1 >= headerEnd) return false;
    // A snaplen cut is not damage: the rest of the list was on the wire
    if (i + 1 >= available) return true;
    const length = d[i + 1];
    if (length < 2 || i + length > headerEnd) return false;
    if (i + length > available) return true;
    switch (kind) {
      case MSS:
        if (length === 4) out.mss = u16(d, i + 2);
        break;
      case WINDOW_SCALE:
        if (length === 3) out.windowScale = d[i + 2];
        break;
      case SACK_PERMITTED:
        if (length === 2) out.sackPermitted = true;
        break;
      case SACK:
        if (length >= 10 && ((length - 2) & 7) === 0) readSackBlocks(d, i + 2, (length - 2) >> 3, out);
        break;
      case TIMESTAMPS:
        if (length === 10) {
          out.hasTimestamp = true;
          out.tsVal = u16(d, i + 2) * 0x10000 + u16(d, i + 4);
          out.tsEcr = u16(d, i + 6) * 0x10000 + u16(d, i + 8);
        }
        break;
    }
    i += length;
  }
  return true;
}

function readSackBlocks(d: Uint8Array, at: number, blocks: number, out: DecodedPacket): void {
  // 40 option bytes hold at most four blocks; the array has room for exactly that
  const count = blocks < 4 ? blocks : 4;
  const edges = out.sackBlocks;
  for (let b = 0; b < count; b++) {
    edges[2 * b] = u16(d, at + 8 * b) * 0x10000 + u16(d, at + 8 * b + 2);
    edges[2 * b + 1] = u16(d, at + 8 * b + 4) * 0x10000 + u16(d, at + 8 * b + 6);
  }
  out.sackCount = count;
}
