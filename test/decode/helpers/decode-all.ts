import { PacketDecoder } from '../../../src/decode/decoder.js';
import { DecodeStatus, DecodedPacket } from '../../../src/decode/packet.js';
import { forEachRecord } from './capture-file.js';

/** The fields of one decoded TCP segment, copied out of the decoder's reused DecodedPacket. */
export interface Segment {
  frame: number;
  ipVersion: 4 | 6;
  srcAddr: number[];
  dstAddr: number[];
  ttl: number;
  ipId: number;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  headerLength: number;
  payloadLength: number;
  capturedPayload: number;
  mss: number;
  windowScale: number;
  sackPermitted: boolean;
  sack: number[];
  hasTimestamp: boolean;
  tsVal: number;
  tsEcr: number;
}

export function snapshot(frame: number, p: DecodedPacket): Segment {
  return {
    frame, ipVersion: p.ipVersion, srcAddr: [...p.srcAddr], dstAddr: [...p.dstAddr], ttl: p.ttl, ipId: p.ipId,
    srcPort: p.srcPort, dstPort: p.dstPort, seq: p.seq, ack: p.ack, flags: p.flags, window: p.window,
    headerLength: p.headerLength, payloadLength: p.payloadLength, capturedPayload: p.capturedPayload, mss: p.mss,
    windowScale: p.windowScale, sackPermitted: p.sackPermitted, sack: [...p.sackBlocks.subarray(0, 2 * p.sackCount)],
    hasTimestamp: p.hasTimestamp, tsVal: p.tsVal, tsEcr: p.tsEcr,
  };
}

export interface Decoded {
  decoder: PacketDecoder;
  /** DecodeStatus per frame, index 0 unused (frames are 1-based). */
  statuses: DecodeStatus[];
  /** TCP segments by frame number. */
  segments: Map<number, Segment>;
}

/** Decodes a whole capture with one decoder, as the analysis does. */
export function decodeFile(path: string): Decoded {
  const decoder = new PacketDecoder();
  const out = new DecodedPacket();
  const statuses: DecodeStatus[] = [DecodeStatus.NotTcp];
  const segments = new Map<number, Segment>();
  forEachRecord(path, (rec) => {
    const status = decoder.decode(rec, out);
    statuses.push(status);
    if (status === DecodeStatus.Tcp) segments.set(rec.frame, snapshot(rec.frame, out));
  });
  return { decoder, statuses, segments };
}
