import type { InputReport } from '../core/session.js';

/** How the report names an input's source: `pcap (little-endian, µs)`, or `live eth0 (cap), filter "tcp port 80"`. */
export function inputSourceLabel(input: InputReport): string {
  if (input.live !== undefined) {
    const { interface: iface, backend, filter } = input.live;
    return `live ${iface} (${backend})${filter !== null ? `, filter "${filter}"` : ''}`;
  }
  return `${input.format} (${input.byteOrder}-endian, ${input.nanosecond ? 'ns' : 'µs'})`;
}
