/**
 * The contract between the capture layer and everything downstream.
 *
 * A reader owns one CaptureRecord and overwrites it for every packet it delivers, so a consumer must
 * copy out whatever it wants to keep before returning from its callback. This is what keeps the read
 * path free of per-packet allocation: `data` is a view of the reader's current chunk, not a copy.
 */
export class CaptureRecord {
  /** 1-based position of this packet in its input (Wireshark's frame number). */
  frame = 0;
  /** LINKTYPE_* value of the interface the packet was captured on. */
  linkType = 0;
  /** Index of the capture interface (pcapng IDB order; 0 for classic pcap). */
  interfaceId = 0;
  /** Whole seconds since the epoch. */
  tsSec = 0;
  /** Nanoseconds within tsSec (0..999,999,999), whatever the file's own resolution. */
  tsNsec = 0;
  /** Bytes present in the capture (after snaplen). */
  capturedLength = 0;
  /** Length of the packet on the wire. */
  originalLength = 0;
  /** Buffer holding the packet bytes at data[offset .. offset + capturedLength). */
  data: Uint8Array = new Uint8Array(0);
  offset = 0;

  /** Seconds since the epoch as a double: microsecond-exact for any date this century. */
  get time(): number {
    return this.tsSec + this.tsNsec / 1e9;
  }
}

export type CaptureFormat = 'pcap' | 'pcapng';

/** What a reader learned about one input, filled in as it reads. */
export interface CaptureInfo {
  path: string;
  format: CaptureFormat | 'unknown';
  byteOrder: 'little' | 'big' | 'unknown';
  /** Timestamp resolution of the file (classic pcap) or of its first interface (pcapng). */
  nanosecond: boolean;
  /** Link type per interface, in interface order. */
  linkTypes: number[];
  snaplen: number;
  packets: number;
  bytesRead: number;
  /** True when reading stopped before the end of the input because the file was damaged. */
  truncated: boolean;
  warnings: string[];
}

/**
 * The input cannot be read at all (missing, not a capture, unsupported version). Damage found after
 * packets have been delivered is not an error: it ends reading with a warning in CaptureInfo.
 */
export class CaptureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaptureError';
  }
}

export type RecordSink = (record: CaptureRecord) => void;
