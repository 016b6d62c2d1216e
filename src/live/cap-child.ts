/**
 * The capture process of the `cap` backend (forked by cap-backend.ts): opens the libpcap handle,
 * stamps each packet at arrival and streams the packets as classic pcap (nanosecond timestamps) on
 * fd 3 to the analysing process. It does nothing else, so its event loop is free whenever the
 * kernel has packets: the kernel ring holds only bufferSize / 64-128 KiB packets (cap fixes the
 * snaplen at 65535 in immediate mode), and any stall longer than that ring silently loses packets.
 * Control and counters travel on the IPC channel.
 */
import { Socket } from 'node:net';
import { setPriority } from 'node:os';
import { ArrivalClock } from './arrival-clock.js';
import { capLinkType, loadCap } from './cap-module.js';
import { CAP_MISSING_MESSAGE, classifyPcapError, type LiveErrorKind } from './errors.js';
import { PcapEncoder, pcapHeader } from './pcap-writer.js';
import { type DropTarget, dropPrivileges } from './privileges.js';

export interface CapChildConfig {
  iface: string;
  filter: string;
  /** libpcap buffer (kernel ring) size in bytes. */
  bufferSize: number;
  dropTo: DropTarget | null;
  /** Packets waiting for the analysing process beyond this are dropped (and counted). */
  maxQueueBytes: number;
}

export interface CapChildCounters {
  /** Packets delivered by libpcap. */
  packets: number;
  /** Packets dropped here because the analysing process fell this far behind. */
  queueDrops: number;
  /** Bytes waiting to be read by the analysing process. */
  queuedBytes: number;
  /** Packets longer than the 65535-byte capture buffer (cut short). */
  truncated: number;
}

export type CapChildMessage =
  | { type: 'ready'; linkType: number; linkName: string }
  | { type: 'error'; kind: LiveErrorKind; message: string }
  | ({ type: 'stats' } & CapChildCounters)
  | ({ type: 'end' } & CapChildCounters);

export type CapParentMessage = { type: 'stop' };

/** Nice value of the capture process (ordinary processes run at 0). */
const CAPTURE_NICE = -10;

/** The largest packet cap delivers: its snaplen. */
const CAP_SNAPLEN = 65535;

function send(message: CapChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || process.send === undefined) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

async function fail(kind: LiveErrorKind, message: string): Promise<never> {
  await send({ type: 'error', kind, message });
  process.exit(1);
}

async function run(config: CapChildConfig): Promise<void> {
  // Ctrl-C reaches the whole terminal's process group; the parent decides when we stop.
  process.on('SIGINT', () => undefined);
  const cap = await loadCap();
  if (cap === null) return fail('cap-missing', CAP_MISSING_MESSAGE);
  const handle = new cap.Cap();
  const buffer = Buffer.alloc(CAP_SNAPLEN);
  let linkName: string;
  try {
    linkName = handle.open(config.iface, config.filter, config.bufferSize, buffer);
  } catch (error) {
    // Never close() a handle whose open failed: cap 0.2.1 then aborts the process in libuv.
    const e = classifyPcapError((error as Error).message, config.iface, config.filter);
    return fail(e.kind, e.message);
  }
  handle.setMinBytes?.(0);
  const linkType = capLinkType(linkName);
  if (linkType < 0) {
    handle.close();
    return fail('other', `cannot capture on ${config.iface}: unexpected link type from cap: ${linkName}`);
  }
  // Scheduled ahead of ordinary processes (the analysis included), so a busy machine delays the
  // draining of the small kernel ring less. Needs root or CAP_SYS_NICE; without them, no change.
  try {
    setPriority(CAPTURE_NICE);
  } catch {
    // Not permitted: run at normal priority.
  }
  if (config.dropTo !== null) {
    try {
      dropPrivileges(config.dropTo);
    } catch (error) {
      handle.close();
      return fail('other', (error as Error).message);
    }
  }

  const out = new Socket({ fd: 3, readable: false, writable: true });
  const counters: CapChildCounters = { packets: 0, queueDrops: 0, queuedBytes: 0, truncated: 0 };
  let stopped = false;
  let flushScheduled = false;
  const encoder = new PcapEncoder(true, (bytes) => {
    out.write(bytes);
  });
  const flush = (): void => {
    flushScheduled = false;
    encoder.flush();
  };
  const clock = new ArrivalClock();
  const maxQueue = config.maxQueueBytes;

  // The hot path: one clock read and one copy per packet; writes happen once per burst.
  handle.on('packet', (nbytes: number, truncated: boolean) => {
    clock.now();
    counters.packets++;
    if (truncated) counters.truncated++;
    if (out.writableLength + encoder.pending > maxQueue) {
      counters.queueDrops++;
      return;
    }
    encoder.append(clock.sec, clock.nsec, buffer, 0, nbytes, nbytes);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  });

  const snapshot = (): CapChildCounters => ({ ...counters, queuedBytes: out.writableLength + encoder.pending });
  const statsTimer = setInterval(() => void send({ type: 'stats', ...snapshot() }), 1000);

  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(statsTimer);
    handle.close();
    encoder.flush();
    void send({ type: 'end', ...snapshot() }).then(() => {
      out.end(() => {
        if (process.connected) process.disconnect();
      });
    });
  };
  out.on('error', () => {
    // The analysing process is gone: nothing more to do.
    if (!stopped) stop();
    out.destroy();
  });
  process.on('message', (message: CapParentMessage) => {
    if (message.type === 'stop') stop();
  });
  process.on('disconnect', stop);
  process.on('SIGTERM', stop);

  out.write(pcapHeader(linkType, true, CAP_SNAPLEN));
  await send({ type: 'ready', linkType, linkName });
}

const config = JSON.parse(process.argv[2] ?? '{}') as CapChildConfig;
run(config).catch((error: unknown) => fail('other', `capture process failed: ${(error as Error).message}`));
