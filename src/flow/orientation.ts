/**
 * Which side of a conversation first seen without its SYN is the server. Ports are the only clue
 * left, in this order:
 *  1. a port below 1024 is a server port (clients get ephemeral ports from 32768 on Linux, 49152 on
 *     Windows and BSD);
 *  2. a port of a well-known service above 1024 (databases, caches, proxies) is a server port;
 *  3. otherwise the lower port is the server's, ephemeral ranges being at the top of the space.
 */
const REGISTERED_SERVICE_PORTS = new Set([
  1433, 1521, 2049, 2181, 2379, 3000, 3128, 3306, 3389, 4222, 5000, 5060, 5222, 5432, 5601, 5672,
  5900, 6379, 6443, 7000, 7001, 8000, 8008, 8080, 8081, 8088, 8200, 8443, 8500, 8888, 9000, 9042,
  9090, 9092, 9200, 9300, 9418, 11211, 15672, 27017,
]);

/** True when the guess is that the packet's source is the client. */
export function sourceLooksLikeClient(srcPort: number, dstPort: number): boolean {
  const srcLow = srcPort < 1024;
  const dstLow = dstPort < 1024;
  if (srcLow !== dstLow) return dstLow;
  const srcService = REGISTERED_SERVICE_PORTS.has(srcPort);
  const dstService = REGISTERED_SERVICE_PORTS.has(dstPort);
  if (srcService !== dstService) return dstService;
  return srcPort > dstPort;
}
