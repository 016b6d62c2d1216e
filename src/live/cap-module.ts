import { CAP_MISSING_MESSAGE, LiveError } from './errors.js';

/** The part of `cap` 0.2.1 (CommonJS, no type declarations) that connscope uses. */
export interface CapHandle {
  /** Opens and activates the device; returns cap's name for the link type. Throws libpcap's message. */
  open(device: string, filter: string, bufferSize: number, buffer: Buffer): string;
  close(): boolean;
  /** Windows only (absent on Linux). */
  setMinBytes?(bytes: number): void;
  on(event: 'packet', listener: (nbytes: number, truncated: boolean) => void): this;
}

export interface CapAddress {
  addr?: string;
  netmask?: string;
  broadaddr?: string;
  dstaddr?: string;
}

export interface CapDevice {
  name: string;
  description?: string;
  addresses: CapAddress[];
  flags?: string;
}

export interface CapModule {
  Cap: {
    new (): CapHandle;
    deviceList(): CapDevice[];
    findDevice(ip?: string): string | undefined;
  };
}

let loaded: Promise<CapModule | null> | null = null;

/**
 * Loads `cap` on first use. It is an optional dependency with a native part: when libpcap's headers
 * were missing at install time it is absent, and everything but live capture must still work, so
 * nothing imports it statically.
 */
export function loadCap(): Promise<CapModule | null> {
  loaded ??= import('cap').then(
    (mod) => mod.default as CapModule,
    () => null,
  );
  return loaded;
}

export async function requireCap(): Promise<CapModule> {
  const cap = await loadCap();
  if (cap === null) throw new LiveError('cap-missing', CAP_MISSING_MESSAGE);
  return cap;
}

/**
 * cap's `open` names the link type (its own strings for the DLT values it knows, "Unknown linktype N"
 * for others); the pcap file format wants the LINKTYPE_ value. On Linux DLT_RAW is 12, stored in
 * files as LINKTYPE_RAW (101); the other DLT values below are equal to their LINKTYPE_ values.
 */
export function capLinkType(name: string): number {
  switch (name) {
    case 'NULL':
      return 0;
    case 'ETHERNET':
      return 1;
    case 'IEEE802_11_RADIO':
      return 127;
    case 'LINKTYPE_LINUX_SLL':
      return 113;
    case 'RAW':
      return 101;
    default: {
      const m = /^Unknown linktype (\d+)$/.exec(name);
      return m ? Number(m[1]) : -1;
    }
  }
}
