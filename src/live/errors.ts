/**
 * Why a live capture could not start (or had to stop). Each message is one line that says what to
 * do; the CLI prints it as `connscope: error: <message>` and exits with code 2.
 */
export type LiveErrorKind = 'cap-missing' | 'permission' | 'interface' | 'filter' | 'tcpdump-missing' | 'usage' | 'other';

export class LiveError extends Error {
  constructor(
    readonly kind: LiveErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'LiveError';
  }
}

export const SETCAP_HINT = 'sudo setcap cap_net_raw,cap_net_admin+eip $(which node)';

export const CAP_MISSING_MESSAGE =
  'live capture needs the optional `cap` module, which was not built (libpcap headers were missing at install time): ' +
  'install them with `sudo apt-get install libpcap-dev` (Debian/Ubuntu) or `sudo dnf install libpcap-devel` (Fedora/RHEL), ' +
  'then run `npm rebuild cap` where connscope is installed; or capture through tcpdump instead: --backend tcpdump';

/** Maps libpcap's messages (from cap or tcpdump) to one actionable line. */
export function classifyPcapError(message: string, iface: string, filter: string): LiveError {
  const text = message.trim().replace(/\s+/g, ' ');
  if (/Operation not permitted|permission|Permission denied/i.test(text)) {
    return new LiveError('permission', `cannot capture on ${iface}: ${text}: run with sudo or grant CAP_NET_RAW: ${SETCAP_HINT}`);
  }
  if (/No such device|doesn't exist|no such interface/i.test(text)) {
    return new LiveError('interface', `cannot capture on ${iface}: ${text} (\`connscope interfaces\` lists the available ones)`);
  }
  if (/not up/i.test(text)) {
    return new LiveError('interface', `cannot capture on ${iface}: the interface is down (bring it up: sudo ip link set ${iface} up)`);
  }
  if (filter !== '' && /filter|syntax error|parse|unknown (host|port|protocol)|illegal|expression/i.test(text)) {
    return new LiveError('filter', `bad capture filter "${filter}": ${text} (BPF syntax: man 7 pcap-filter)`);
  }
  return new LiveError('other', `cannot capture on ${iface}: ${text}`);
}
