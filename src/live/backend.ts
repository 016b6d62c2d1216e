import type { Readable } from 'node:stream';

export type BackendName = 'cap' | 'tcpdump';

/** Counters a backend can give while it runs (null: this backend cannot know). */
export interface BackendCounters {
  /** Packets the kernel dropped because its buffer was full (tcpdump: libpcap's ps_drop). */
  kernelDrops: number | null;
  /** Packets the capture process dropped because analysis fell behind (cap backend). */
  queueDrops: number | null;
  /** Bytes waiting between the capture process and analysis. */
  queuedBytes: number | null;
}

export interface BackendEnd extends BackendCounters {
  /** When the capture ended by itself rather than on stop(): what the capture process said. */
  unexpected: string | null;
  /** Lines for the report's warnings (drop counts, truncation). */
  warnings: string[];
}

/**
 * A source of live packets. Both backends run the capture in a separate process that streams
 * classic pcap, which connscope reads with the same reader as offline files (readCaptureStream):
 * one pipeline, two sources.
 */
export interface LiveBackend {
  readonly name: BackendName;
  /** Opens the capture; resolves with the pcap stream once packets are being captured. Throws LiveError. */
  start(): Promise<Readable>;
  counters(): BackendCounters;
  /** Asks the capture to end: the stream then ends after the last captured packet. */
  stop(): void;
  /** Waits for the capture process to exit (call after the stream ended). */
  finish(): Promise<BackendEnd>;
  /** Ends the capture process at once (second Ctrl-C, internal errors). */
  kill(): void;
}
