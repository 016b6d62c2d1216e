import { closeSync, fchownSync, openSync, unlinkSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { readCaptureStream } from '../capture/read.js';
import { CaptureError, type CaptureInfo, type CaptureRecord } from '../capture/record.js';
import { AnalysisSession, type AnalysisResult, type SessionOptions } from '../core/session.js';
import type { Finding } from '../detect/finding.js';
import type { BackendName, LiveBackend } from './backend.js';
import { CapBackend } from './cap-backend.js';
import { requireCap } from './cap-module.js';
import { LiveError } from './errors.js';
import { interfaceState, listInterfaces } from './interfaces.js';
import { LossCounter } from './loss.js';
import { PcapFileWriter } from './pcap-writer.js';
import { type DropTarget, dropPrivileges, dropTarget } from './privileges.js';
import { TcpdumpBackend } from './tcpdump-backend.js';

export interface LiveOptions {
  iface: string;
  /** BPF filter expression ('' for none). */
  filter: string;
  backend: BackendName;
  durationSeconds: number | null;
  /** Stop after this many packets. */
  count: number | null;
  writePath: string | null;
  /** -w timestamp resolution. */
  nanosecond: boolean;
  /** Kernel capture buffer in bytes. */
  bufferBytes: number;
  dropPrivileges: boolean;
  session: Omit<SessionOptions, 'onFinding' | 'segmentObserver'>;
  /** tcpdump program for --backend tcpdump (tests). */
  tcpdumpCommand?: string;
}

/**
 * Default kernel capture buffer (libpcap's ring), in MiB. cap opens with snaplen 65535 in immediate
 * mode, so libpcap cuts the ring into fixed frames of 64-128 KiB whenever the interface has
 * segmentation or receive offloads (TSO/GSO/GRO: nearly every real NIC), and the ring holds only
 * this / 64-128 KiB packets: 128 MiB is 1,000-2,000 packets, 10-20 ms of a 100,000 packets/s stream
 * while the capture process is not scheduled. bench/live-flood.sh on a loaded 2-core machine lost
 * 28-52% at 16 MiB, 0.1-2% at 64 MiB, 0-0.5% at 128 MiB (figures in the README, "Live capture"). The memory is
 * the kernel's, for the duration of the capture; libpcap shrinks the ring if it cannot have it all.
 */
export const DEFAULT_BUFFER_MIB = 128;
/** Memory the cap capture process may fill with packets waiting for analysis before dropping. */
export const MAX_QUEUE_BYTES = 256 * 2 ** 20;

export interface LiveStats {
  /** Wall time of this snapshot and seconds since the capture started. */
  time: number;
  elapsedSeconds: number;
  packets: number;
  tcpPackets: number;
  bytes: number;
  /** Over the last interval. */
  packetsPerSecond: number;
  bytesPerSecond: number;
  conversationsOpen: number;
  findings: number;
  /** TCP segments the streams show were never seen (see LossCounter). */
  segmentsNotCaptured: number;
  sequenceGaps: number;
  ackedUnseen: number;
  /** tcpdump backend: the kernel's drop count (null with cap: libpcap through cap has no counters). */
  kernelDrops: number | null;
  /** cap backend: packets dropped because analysis fell MAX_QUEUE_BYTES behind; bytes waiting. */
  queueDrops: number | null;
  queuedBytes: number | null;
  /** Packets written with -w (null without -w). */
  written: number | null;
}

export interface LiveStart {
  iface: string;
  backend: BackendName;
  filter: string;
  linkType: number | null;
  writePath: string | null;
  /** The user the capture continues as (null: privileges kept, or not root). */
  droppedTo: string | null;
}

/** What the live capture tells its display. */
export interface LiveListener {
  started(info: LiveStart): void;
  finding(finding: Finding, isUpdate: boolean): void;
  /** About once a second. `session` gives the live conversations (read only). */
  tick(stats: LiveStats, session: AnalysisSession): void;
  warning(message: string): void;
}

export interface LiveOutcome {
  result: AnalysisResult;
  stats: LiveStats;
  /** Problems that make the exit code 2 (the capture process failed, -w could not be written). */
  errors: string[];
  /** Why the capture ended: 'signal', 'duration', 'count', 'output-closed', 'interface-down', 'ended'. */
  endReason: string;
}

/**
 * One live capture: a backend's pcap stream through the same reader, session (decoder, tracker,
 * detectors) and report as `connscope analyze`, with findings delivered as they fire.
 */
export class LiveCapture {
  private backend: LiveBackend | null = null;
  /** The backend's start() resolved: it can be asked to stop. */
  private started = false;
  private endReason: string | null = null;
  private stopRequested = false;
  private aborted = false;
  private readonly loss = new LossCounter();
  private readonly session: AnalysisSession;
  private writer: PcapFileWriter | null = null;
  private findings = 0;
  private packets = 0;
  private bytes = 0;
  private startedAt = 0;
  private lastTick = { time: 0, packets: 0, bytes: 0 };
  private linkType: number | null = null;
  private downWarning: string | null = null;
  private watchInterface = false;

  constructor(
    private readonly options: LiveOptions,
    private readonly listener: LiveListener,
  ) {
    this.session = new AnalysisSession({
      ...options.session,
      onFinding: (finding, isUpdate) => {
        if (!isUpdate) this.findings++;
        listener.finding(finding, isUpdate);
      },
      segmentObserver: this.loss,
    });
  }

  /** Packets written to the -w file so far (null without -w). */
  get written(): number | null {
    return this.writer?.packets ?? null;
  }

  /** Ends the capture (signal, output closed, ...): the report is still produced. */
  stop(reason: string): void {
    if (this.stopRequested) return;
    this.stopRequested = true;
    this.endReason ??= reason;
    if (this.started) this.backend?.stop();
  }

  /**
   * Ends at once, without a report (a second Ctrl-C): the capture process is killed and run()
   * resolves to null as soon as the -w file holds every packet read so far, in whole records.
   */
  abort(): void {
    this.aborted = true;
    this.stopRequested = true;
    this.endReason ??= 'aborted';
    this.backend?.kill();
  }

  /** The outcome, or null when abort() ended it. */
  async run(): Promise<LiveOutcome | null> {
    const { options } = this;
    if (options.backend === 'cap') await requireCap();
    await this.checkInterface();
    const target = options.dropPrivileges ? dropTarget() : null;
    const fd = options.writePath !== null ? this.openOutput(options.writePath, target) : null;
    const backend = this.makeBackend(target);
    this.backend = backend;
    let stream: Readable;
    try {
      stream = await backend.start();
    } catch (error) {
      if (fd !== null && options.writePath !== null) this.discardOutput(fd, options.writePath);
      throw error;
    }
    this.started = true;
    if (fd !== null && options.writePath !== null) this.writer = new PcapFileWriter(fd, options.writePath, options.nanosecond);
    if (this.aborted) backend.kill();
    else if (this.stopRequested) backend.stop();
    if (target !== null) {
      try {
        dropPrivileges(target);
      } catch (error) {
        backend.kill();
        await this.closeOutput(null);
        throw error;
      }
    }
    if (backend instanceof CapBackend) this.linkType = backend.linkType;
    // Watch the interface only if the kernel's view of it is ours: entered into a network namespace
    // without its /sys (nsenter --net), /sys/class/net shows another namespace's interfaces.
    this.watchInterface = interfaceState(options.iface) === 'up';
    this.startedAt = Date.now() / 1000;
    this.lastTick = { time: this.startedAt, packets: 0, bytes: 0 };
    this.listener.started({
      iface: options.iface, backend: options.backend, filter: options.filter, linkType: this.linkType,
      writePath: options.writePath, droppedTo: target?.user ?? null,
    });

    const timers: NodeJS.Timeout[] = [setInterval(() => this.tick(), 1000)];
    if (options.durationSeconds !== null) timers.push(setTimeout(() => this.stop('duration'), options.durationSeconds * 1000));

    const name = `live:${options.iface}`;
    this.session.beginInput(name, { interface: options.iface, backend: options.backend, filter: options.filter !== '' ? options.filter : null });
    let info: CaptureInfo;
    const errors: string[] = [];
    try {
      info = await readCaptureStream(name, this.tap(stream), this.sink);
    } catch (error) {
      if (!(error instanceof CaptureError)) {
        backend.kill();
        throw error;
      }
      // The stream was cut before a single header (the capture process died at once) or damaged.
      info = emptyInfo(name);
      if (!this.stopRequested) errors.push(`${name}: ${error.message}`);
      backend.stop();
    } finally {
      for (const timer of timers) clearTimeout(timer);
    }
    // Not stop(): finish() tells a capture that ended by itself (interface down) from one we ended.
    const end = await backend.finish();
    if (this.aborted) {
      await this.closeOutput(info);
      return null;
    }
    const warnings = [...end.warnings];
    if (end.unexpected !== null && this.endReason === null) {
      const state = this.watchInterface ? interfaceState(options.iface) : 'unknown';
      // cap's assertion on a poll error is how its process dies when the interface went away, even
      // when the interface is back up by the time we look.
      const sign = /interface (went down|disappeared)|not up|No such device|cb_packets.*status == 0/i;
      if (state === 'down' || state === 'gone' || sign.test(end.unexpected)) {
        this.interfaceDown(state === 'gone');
      } else {
        errors.push(`capture on ${options.iface} ended unexpectedly: ${end.unexpected}`);
        this.endReason = 'ended';
      }
    }
    if (this.downWarning !== null) warnings.push(this.downWarning);
    const lossWarning = this.loss.warning();
    if (lossWarning !== null) warnings.push(lossWarning);
    info.warnings.push(...warnings);
    this.session.endInput(info);
    const result = this.session.finish();
    const writeError = await this.closeOutput(info);
    if (writeError !== null) errors.push(writeError);
    const stats = this.snapshot(Date.now() / 1000);
    return { result, stats, errors, endReason: this.endReason ?? 'ended' };
  }

  /** Completes the -w file (if any); returns the write error that cut it short, if one did. */
  private async closeOutput(info: CaptureInfo | null): Promise<string | null> {
    if (this.writer === null) return null;
    // No packet and no stream header (aborted at once): an empty capture of Ethernet is still a valid file.
    await this.writer.close(this.linkType ?? info?.linkTypes[0] ?? 1);
    return this.writer.error;
  }

  /** The record sink: every captured packet goes to -w and to the analysis. */
  private readonly sink = (rec: CaptureRecord): void => {
    const count = this.options.count;
    if (count !== null && this.packets >= count) return;
    this.packets++;
    this.bytes += rec.originalLength;
    this.writer?.add(rec);
    this.session.record(rec);
    if (count !== null && this.packets >= count) this.stop('count');
  };

  /** Passes the stream through, noting the link type from the pcap header (for an empty -w file). */
  private async *tap(stream: Readable): AsyncGenerator<Uint8Array> {
    let head: Buffer = Buffer.alloc(0);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (this.linkType === null && head.length < 24) {
        head = Buffer.concat([head, chunk]);
        if (head.length >= 24) {
          const magic = head.readUInt32LE(0);
          const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
          this.linkType = (le ? head.readUInt32LE(20) : head.readUInt32BE(20)) & 0xffff;
        }
      }
      yield chunk;
    }
  }

  /** The interface went down or away: a warning, and the capture ends (report as usual). */
  private interfaceDown(gone: boolean): void {
    if (this.downWarning !== null) return;
    this.downWarning = `interface ${this.options.iface} ${gone ? 'disappeared' : 'went down'} at ${new Date().toISOString()}: capture ended`;
    this.listener.warning(this.downWarning);
    this.endReason ??= 'interface-down';
    this.stop('interface-down');
  }

  private tick(): void {
    const now = Date.now() / 1000;
    // tcpdump keeps waiting on a downed interface, and cap's process dies a moment later: look.
    if (this.watchInterface) {
      const state = interfaceState(this.options.iface);
      if (state === 'down' || state === 'gone') this.interfaceDown(state === 'gone');
    }
    this.writer?.flush();
    const stats = this.snapshot(now);
    this.lastTick = { time: now, packets: this.packets, bytes: this.bytes };
    this.listener.tick(stats, this.session);
  }

  private snapshot(now: number): LiveStats {
    const interval = Math.max(1e-3, now - this.lastTick.time);
    const counters = this.backend?.counters() ?? { kernelDrops: null, queueDrops: null, queuedBytes: null };
    return {
      time: now,
      elapsedSeconds: Math.max(0, now - this.startedAt),
      packets: this.packets,
      tcpPackets: this.session.tcpPackets,
      bytes: this.bytes,
      packetsPerSecond: (this.packets - this.lastTick.packets) / interval,
      bytesPerSecond: (this.bytes - this.lastTick.bytes) / interval,
      conversationsOpen: this.session.liveConversations,
      findings: this.findings,
      segmentsNotCaptured: this.loss.total,
      sequenceGaps: this.loss.sequenceGaps,
      ackedUnseen: this.loss.ackedUnseen,
      kernelDrops: counters.kernelDrops,
      queueDrops: counters.queueDrops,
      queuedBytes: counters.queuedBytes,
      written: this.written,
    };
  }

  private async checkInterface(): Promise<void> {
    const { iface } = this.options;
    if (iface === '') throw new LiveError('usage', 'no interface given: use -i IFACE (`connscope interfaces` lists them)');
    const list = await listInterfaces();
    const names = list.interfaces.map((i) => i.name);
    if (!names.includes(iface)) {
      throw new LiveError('interface', `no interface "${iface}" here (available: ${names.join(', ')}); \`connscope interfaces\` shows their addresses`);
    }
  }

  private openOutput(path: string, target: DropTarget | null): number {
    let fd: number;
    try {
      fd = openSync(path, 'w', 0o644);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new LiveError('usage', `cannot write ${path}: ${code}`);
    }
    // Opened as root so any directory works; it belongs to the user who ran sudo.
    if (target?.fromSudo === true) {
      try {
        fchownSync(fd, target.uid, target.gid);
      } catch {
        // Some filesystems (FAT, some network mounts) have no owners.
      }
    }
    return fd;
  }

  private discardOutput(fd: number, path: string): void {
    try {
      closeSync(fd);
      unlinkSync(path);
    } catch {
      // Best effort: the capture did not start, and the error says why.
    }
  }

  private makeBackend(target: DropTarget | null): LiveBackend {
    const { options } = this;
    if (options.backend === 'tcpdump') {
      return new TcpdumpBackend({
        iface: options.iface, filter: options.filter, bufferSize: options.bufferBytes, nanosecond: options.nanosecond,
        dropTo: target, command: options.tcpdumpCommand,
      });
    }
    return new CapBackend({
      iface: options.iface, filter: options.filter, bufferSize: options.bufferBytes, dropTo: target, maxQueueBytes: MAX_QUEUE_BYTES,
    });
  }
}

function emptyInfo(path: string): CaptureInfo {
  return {
    path, format: 'unknown', byteOrder: 'unknown', nanosecond: false, linkTypes: [], snaplen: 0, packets: 0, bytesRead: 0,
    truncated: false, warnings: [],
  };
}
