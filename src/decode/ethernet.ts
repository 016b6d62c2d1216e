import { DecodeStatus } from './packet.js';
import { Layer, type Walk, ipByVersion, missing, u16 } from './walk.js';

/**
 * An Ethernet header. `tagLength` skips a switch tag spliced in between the source address and the
 * type field (Marvell DSA: 4 bytes, EDSA: 8).
 */
export function ethernet(w: Walk, tagLength: number): number {
  const typeAt = w.pos + 12 + tagLength;
  if (typeAt + 2 > w.capEnd) return missing(w, typeAt + 2);
  w.ethertype = u16(w.data, typeAt);
  w.pos = typeAt + 2;
  return Layer.Ethertype;
}

/** Follows w.ethertype through VLAN tags, MPLS and PPPoE to IP. */
export function ethertype(w: Walk): number {
  const d = w.data;
  for (;;) {
    const type = w.ethertype;
    switch (type) {
      case 0x0800:
        return Layer.Ipv4;
      case 0x86dd:
        return Layer.Ipv6;
      // 802.1Q, 802.1ad, and the pre-standard 0x9100 Q-in-Q; stacks of them are walked tag by tag
      case 0x8100:
      case 0x88a8:
      case 0x9100: {
        const p = w.pos;
        if (p + 4 > w.capEnd) return missing(w, p + 4);
        w.vlanTags++;
        w.ethertype = u16(d, p + 2);
        w.pos = p + 4;
        break;
      }
      case 0x8847:
      case 0x8848:
        return mpls(w);
      case 0x8864:
        return pppoeSession(w);
      // Transparent Ethernet bridging: a whole frame inside GRE
      case 0x6558:
        return Layer.Ethernet;
      default:
        // Up to 1500 the field is an 802.3 length and an 802.2 LLC header follows
        return type <= 1500 ? llc(w) : DecodeStatus.NotTcp;
    }
  }
}

/**
 * 802.2 LLC. Only SNAP (AA AA 03) names an ethertype, under OUI 00-00-00 (RFC 1042) or 00-00-F8
 * (802.1H); IP straight over LLC (SAP 06) is not used in practice.
 */
export function llc(w: Walk): number {
  const d = w.data;
  const p = w.pos;
  if (p + 3 > w.capEnd) return missing(w, p + 3);
  if (d[p] !== 0xaa || d[p + 1] !== 0xaa || d[p + 2] !== 0x03) return DecodeStatus.NotTcp;
  if (p + 8 > w.capEnd) return missing(w, p + 8);
  if (d[p + 3] !== 0 || d[p + 4] !== 0 || (d[p + 5] !== 0 && d[p + 5] !== 0xf8)) return DecodeStatus.NotTcp;
  const type = u16(d, p + 6);
  // SNAP names an ethertype; a value in the 802.3 length range is not one
  if (type <= 1500) return DecodeStatus.NotTcp;
  w.ethertype = type;
  w.pos = p + 8;
  return Layer.Ethertype;
}

/**
 * An MPLS label stack. The stack does not say what it carries; like tcpdump and Wireshark, the
 * first nibble after it is taken as the IP version (pseudowires carrying Ethernet are not followed).
 */
function mpls(w: Walk): number {
  const d = w.data;
  let p = w.pos;
  for (;;) {
    if (p + 4 > w.capEnd) return missing(w, p + 4);
    const bottomOfStack = d[p + 2] & 1;
    p += 4;
    if (bottomOfStack !== 0) break;
  }
  w.pos = p;
  return ipByVersion(w, DecodeStatus.NotTcp);
}

/** PPPoE session stage (RFC 2516): a 6-byte header, then the PPP protocol, never compressed. */
function pppoeSession(w: Walk): number {
  const p = w.pos;
  if (p + 8 > w.capEnd) return missing(w, p + 8);
  const protocol = u16(w.data, p + 6);
  w.pos = p + 8;
  if (protocol === 0x0021) return Layer.Ipv4;
  if (protocol === 0x0057) return Layer.Ipv6;
  return DecodeStatus.NotTcp;
}
