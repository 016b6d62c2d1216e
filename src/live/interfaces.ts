import { readdirSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { loadCap } from './cap-module.js';

export interface InterfaceAddress {
  address: string;
  /** Prefix length from the netmask; null when unknown. */
  prefix: number | null;
}

export interface InterfaceInfo {
  name: string;
  description: string | null;
  addresses: InterfaceAddress[];
  loopback: boolean;
  /** From the kernel (IFF_UP / IFF_RUNNING); null for pseudo-devices such as `any`. */
  up: boolean | null;
  running: boolean | null;
}

export interface InterfaceList {
  /** `cap`: libpcap's device list; `system`: the kernel's interfaces (cap not built). */
  source: 'cap' | 'system';
  interfaces: InterfaceInfo[];
}

const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;

function sysFlags(name: string): number | null {
  try {
    return Number.parseInt(readFileSync(`/sys/class/net/${name}/flags`, 'utf8').trim(), 16);
  } catch {
    return null;
  }
}

/** The kernel's network interfaces (Linux /sys/class/net), sorted; [] elsewhere. */
export function systemInterfaceNames(): string[] {
  try {
    return readdirSync('/sys/class/net').sort();
  } catch {
    return Object.keys(networkInterfaces()).sort();
  }
}

/** Whether an interface is still there and up (to tell why a capture ended by itself). */
export function interfaceState(name: string): 'up' | 'down' | 'gone' | 'unknown' {
  if (name === 'any') return 'up';
  const flags = sysFlags(name);
  if (flags === null) return systemInterfaceNames().length > 0 && !systemInterfaceNames().includes(name) ? 'gone' : 'unknown';
  return (flags & IFF_UP) !== 0 ? 'up' : 'down';
}

export function prefixLength(netmask: string | undefined): number | null {
  if (netmask === undefined || netmask === '') return null;
  let bits = 0;
  if (netmask.includes('.')) {
    for (const part of netmask.split('.')) bits += popcount(Number(part));
    return bits;
  }
  for (const part of netmask.split(':')) if (part !== '') bits += popcount(Number.parseInt(part, 16));
  return bits;
}

function popcount(n: number): number {
  let count = 0;
  for (let v = n >>> 0; v !== 0; v &= v - 1) count++;
  return count;
}

/** Link detected (sysfs has no IFF_RUNNING in `flags`; `carrier` is it, unreadable while down). */
function carrier(name: string): boolean {
  try {
    return readFileSync(`/sys/class/net/${name}/carrier`, 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

function withKernelState(info: Omit<InterfaceInfo, 'up' | 'running'>): InterfaceInfo {
  const flags = sysFlags(info.name);
  return {
    ...info,
    loopback: info.loopback || (flags !== null && (flags & IFF_LOOPBACK) !== 0),
    up: flags === null ? null : (flags & IFF_UP) !== 0,
    running: flags === null ? null : (flags & IFF_UP) !== 0 && carrier(info.name),
  };
}

/** Capture devices, like `tcpdump -D`: libpcap's list when `cap` is built, else the kernel's. */
export async function listInterfaces(): Promise<InterfaceList> {
  const cap = await loadCap();
  if (cap !== null) {
    const devices = cap.Cap.deviceList();
    return {
      source: 'cap',
      interfaces: devices.map((d) => withKernelState({
        name: d.name,
        description: d.description ?? null,
        addresses: d.addresses
          .filter((a) => a.addr !== undefined)
          .map((a) => ({ address: a.addr as string, prefix: prefixLength(a.netmask) })),
        loopback: d.flags === 'PCAP_IF_LOOPBACK',
      })),
    };
  }
  const os = networkInterfaces();
  const names = [...new Set([...systemInterfaceNames(), ...Object.keys(os)])];
  const interfaces = names.map((name) => withKernelState({
    name,
    description: null,
    addresses: (os[name] ?? []).map((a) => ({ address: a.address, prefix: prefixLength(a.netmask) })),
    loopback: (os[name] ?? []).some((a) => a.internal),
  }));
  interfaces.push({ name: 'any', description: 'Pseudo-device that captures on all interfaces', addresses: [], loopback: false, up: null, running: null });
  return { source: 'system', interfaces };
}

export function formatInterfaceList(list: InterfaceList): string {
  const lines = list.interfaces.map((info, i) => {
    const state: string[] = [];
    if (info.loopback) state.push('loopback');
    if (info.up !== null) state.push(info.up ? 'up' : 'down');
    if (info.running === true) state.push('running');
    const addresses = info.addresses.map((a) => (a.prefix === null ? a.address : `${a.address}/${a.prefix}`));
    const parts = [`${i + 1}.${info.name}`];
    if (state.length > 0) parts.push(`[${state.join(', ')}]`);
    if (info.description !== null) parts.push(`(${info.description})`);
    if (addresses.length > 0) parts.push(addresses.join(' '));
    return parts.join(' ');
  });
  if (list.source === 'system') lines.push('(kernel interfaces: the `cap` module is not built, so libpcap\'s list is not available; `--backend tcpdump` captures on these)');
  return lines.join('\n') + '\n';
}
