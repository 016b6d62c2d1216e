// pcap-parser 0.2.1 ships no types; only what the differential test uses.
declare module 'pcap-parser' {
  import type { EventEmitter } from 'node:events';
  import type { Readable } from 'node:stream';

  namespace pcapParser {
    interface PacketHeader {
      timestampSeconds: number;
      timestampMicroseconds: number;
      capturedLength: number;
      originalLength: number;
    }
    interface Packet {
      header: PacketHeader;
      data: Buffer;
    }
  }
  const pcapParser: { parse(input: string | Readable): EventEmitter };
  export = pcapParser;
}
