import { isIPv4, isIPv6 } from 'node:net';
import type { DecodedPacket } from '../decode/packet.js';

/** --host / --port: packets are kept when either end matches (tcpdump's `host X`, `port N`). */
export interface FilterOptions {
  hosts?: string[];
  ports?: number[];
}

export class FilterError extends Error {}

/** Parses an IPv4 or IPv6 literal into the decoder's four-word form (IPv4 is IPv4-mapped). */
export function parseAddress(text: string): Uint32Array {
  const words = new Uint32Array(4);
  if (isIPv4(text)) {
    const [a, b, c, d] = text.split('.').map(Number);
    words[2] = 0xffff;
    words[3] = ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
    return words;
  }
  if (!isIPv6(text)) throw new FilterError(`not an IP address: "${text}"`);
  let body = text;
  const groups: number[] = [];
  const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(body);
  if (v4Tail) {
    const tail = parseAddress(v4Tail[1])[3];
    body = body.slice(0, -v4Tail[1].length) + `${(tail >>> 16).toString(16)}:${(tail & 0xffff).toString(16)}`;
  }
  const [head, rest] = body.split('::');
  const headGroups = head ? head.split(':') : [];
  const restGroups = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const zeros = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  for (const g of headGroups) groups.push(parseInt(g, 16));
  for (let i = 0; i < zeros; i++) groups.push(0);
  for (const g of restGroups) groups.push(parseInt(g, 16));
  for (let i = 0; i < 4; i++) words[i] = ((groups[2 * i] << 16) | groups[2 * i + 1]) >>> 0;
  return words;
}

export class PacketFilter {
  private constructor(
    private readonly hosts: Uint32Array[],
    private readonly ports: number[],
  ) {}

  static create(options: FilterOptions): PacketFilter | null {
    const hosts = (options.hosts ?? []).map(parseAddress);
    const ports = options.ports ?? [];
    for (const port of ports) {
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new FilterError(`not a TCP port: "${port}"`);
    }
    return hosts.length === 0 && ports.length === 0 ? null : new PacketFilter(hosts, ports);
  }

  matches(pkt: DecodedPacket): boolean {
    if (this.ports.length > 0 && !this.ports.includes(pkt.srcPort) && !this.ports.includes(pkt.dstPort)) return false;
    if (this.hosts.length === 0) return true;
    for (const host of this.hosts) {
      if (sameAddress(host, pkt.srcAddr) || sameAddress(host, pkt.dstAddr)) return true;
    }
    return false;
  }
}

function sameAddress(a: Uint32Array, b: Uint32Array): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}
