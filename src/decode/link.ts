import { DecodeStatus } from './packet.js';
import { ethernet, llc } from './ethernet.js';
import { LinkType } from './link-types.js';
import { Layer, UNKNOWN_END, type Walk, ipByVersion, missing, u16 } from './walk.js';

/** The link-layer header named by the capture's link type, up to the layer it carries. */
export function decodeLink(w: Walk, linkType: number): number {
  switch (linkType) {
    case LinkType.Ethernet:
      return Layer.Ethernet;
    case LinkType.Null:
    case LinkType.Loop:
      return bsdLoopback(w);
    case LinkType.Raw:
    case LinkType.RawDlt12:
    case LinkType.RawDlt14:
      return ipByVersion(w, DecodeStatus.Malformed);
    case LinkType.Ipv4:
      return Layer.Ipv4;
    case LinkType.Ipv6:
      return Layer.Ipv6;
    case LinkType.LinuxSll:
      return linuxSll(w);
    case LinkType.LinuxSll2:
      return linuxSll2(w);
    case LinkType.Nflog:
      return nflog(w);
    case LinkType.Fddi:
      return fddi(w);
    case LinkType.DsaTagDsa:
      return ethernet(w, 4);
    case LinkType.DsaTagEdsa:
      return ethernet(w, 8);
    default:
      return DecodeStatus.UnsupportedLink;
  }
}

/**
 * BSD loopback: a 4-byte address family, in the capturing host's byte order for NULL and network
 * order for LOOP (which some writers get wrong). Families are below 256, so the zero half of the
 * word tells the order. AF_INET6 is 24 on NetBSD/OpenBSD, 28 on FreeBSD, 30 on macOS.
 */
function bsdLoopback(w: Walk): number {
  const d = w.data;
  const p = w.pos;
  if (p + 4 > w.capEnd) return missing(w, p + 4);
  const family = d[p] === 0 && d[p + 1] === 0 ? u16(d, p + 2) : d[p] | (d[p + 1] << 8);
  w.pos = p + 4;
  if (family === 2) return Layer.Ipv4;
  if (family === 24 || family === 28 || family === 30) return Layer.Ipv6;
  return DecodeStatus.NotTcp;
}

const ARPHRD_NETLINK = 824;
const SLL_PROTOCOL_802_2 = 0x0004;

/** Linux cooked v1: packet type, ARPHRD type, address length, 8 address bytes, protocol. */
function linuxSll(w: Walk): number {
  const p = w.pos;
  if (p + 16 > w.capEnd) return missing(w, p + 16);
  w.pos = p + 16;
  return cookedProtocol(w, u16(w.data, p + 2), u16(w.data, p + 14));
}

/** Linux cooked v2: protocol, reserved, interface index, ARPHRD type, packet type, address. */
function linuxSll2(w: Walk): number {
  const p = w.pos;
  if (p + 20 > w.capEnd) return missing(w, p + 20);
  w.pos = p + 20;
  return cookedProtocol(w, u16(w.data, p + 8), u16(w.data, p));
}

/**
 * The cooked protocol field is an ethertype, except on netlink captures (a netlink family) and for
 * values below 0x0600, which name Linux pseudo-protocols (802.2 LLC, Novell 802.3, CAN...).
 */
function cookedProtocol(w: Walk, hardwareType: number, protocol: number): number {
  if (hardwareType === ARPHRD_NETLINK) return DecodeStatus.NotTcp;
  if (protocol === SLL_PROTOCOL_802_2) return llc(w);
  if (protocol < 0x0600) return DecodeStatus.NotTcp;
  w.ethertype = protocol;
  return Layer.Ethertype;
}

const NFULA_PAYLOAD = 9;
/** Netlink attribute types carry two flag bits (nested, network byte order) above the type. */
const NLA_TYPE_MASK = 0x3fff;

/**
 * Linux NFLOG: a 4-byte header (family, version, resource id), then netlink attributes whose
 * length and type are in the capturing host's byte order, which the file does not record. The
 * kernel always writes the 8-byte packet-header attribute first, so whichever byte order reads
 * its length as the smaller number is the right one. The packet is the NFULA_PAYLOAD attribute.
 */
function nflog(w: Walk): number {
  const d = w.data;
  const end = w.capEnd;
  let p = w.pos + 4;
  if (p + 4 > end) return missing(w, p + 4);
  const littleEndian = (d[p] | (d[p + 1] << 8)) <= u16(d, p);
  while (p + 4 <= end) {
    const length = littleEndian ? d[p] | (d[p + 1] << 8) : u16(d, p);
    const type = (littleEndian ? d[p + 2] | (d[p + 3] << 8) : u16(d, p + 2)) & NLA_TYPE_MASK;
    if (length < 4) return DecodeStatus.Malformed;
    if (type === NFULA_PAYLOAD) {
      w.pos = p + 4;
      if (p + length < end) w.capEnd = p + length;
      // The copy range (--nflog-size) cuts packets without recording how long they were
      w.snapEnd = w.capEnd;
      w.cut = true;
      w.wireEnd = UNKNOWN_END;
      return ipByVersion(w, DecodeStatus.NotTcp);
    }
    // Attributes are padded to 4 bytes
    p += (length + 3) & ~3;
  }
  return w.cut ? DecodeStatus.Truncated : DecodeStatus.NotTcp;
}

/** FDDI: frame control, destination and source addresses, then 802.2 LLC. */
function fddi(w: Walk): number {
  const p = w.pos;
  if (p + 13 > w.capEnd) return missing(w, p + 13);
  w.pos = p + 13;
  return llc(w);
}
