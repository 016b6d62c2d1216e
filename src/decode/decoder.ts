import type { CaptureRecord } from '../capture/record.js';
import { ethernet, ethertype } from './ethernet.js';
import { gre } from './gre.js';
import { ipv4 } from './ipv4.js';
import { ipv6 } from './ipv6.js';
import { decodeLink } from './link.js';
import { DecodeStatus, type DecodedPacket } from './packet.js';
import { DecodeStats } from './stats.js';
import { tcp } from './tcp.js';
import { Layer, Walk } from './walk.js';

export { DecodeStats, decodeWarnings } from './stats.js';

/**
 * Every layer consumes bytes, so the walk ends anyway; the bound makes that obvious and caps the
 * cost of a crafted packet. ERSPAN, the deepest common case, takes eight.
 */
const MAX_LAYERS = 24;

/**
 * Reads a captured frame down to its TCP header. One decoder per capture: it owns the walk state
 * and the statistics, fills the caller's DecodedPacket and allocates nothing per packet.
 */
export class PacketDecoder {
  readonly stats = new DecodeStats();
  private readonly walk = new Walk();

  decode(rec: CaptureRecord, out: DecodedPacket): DecodeStatus {
    const w = this.walk;
    const data = rec.data;
    let snapEnd = rec.offset + rec.capturedLength;
    if (snapEnd > data.length) snapEnd = data.length;
    const wireEnd = rec.offset + rec.originalLength;
    w.data = data;
    w.pos = rec.offset;
    w.capEnd = snapEnd;
    w.snapEnd = snapEnd;
    w.wireEnd = wireEnd > snapEnd ? wireEnd : snapEnd;
    w.cut = wireEnd > snapEnd;
    w.fragEnd = -1;
    w.vlanTags = 0;
    w.shortFrame = false;
    w.optionsDamaged = false;

    let result = decodeLink(w, rec.linkType);
    for (let layers = 0; result >= Layer.First; layers++) {
      if (layers === MAX_LAYERS) {
        result = DecodeStatus.Malformed;
        break;
      }
      switch (result) {
        case Layer.Ethernet:
          result = ethernet(w, 0);
          break;
        case Layer.Ethertype:
          result = ethertype(w);
          break;
        case Layer.Ipv4:
          result = ipv4(w, out);
          break;
        case Layer.Ipv6:
          result = ipv6(w, out);
          break;
        case Layer.Gre:
          result = gre(w);
          break;
        default:
          result = tcp(w, out);
      }
    }
    const status = result as DecodeStatus;
    this.stats.count(status, rec.linkType, w);
    return status;
  }
}
