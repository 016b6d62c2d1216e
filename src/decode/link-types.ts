/** LINKTYPE_* values the decoder reads (https://www.tcpdump.org/linktypes.html). */
export const enum LinkType {
  Null = 0,
  Ethernet = 1,
  Fddi = 10,
  /**
   * DLT_RAW is 12 on most systems and 14 on OpenBSD. Files should carry LINKTYPE_RAW (101), but old
   * writers stored the DLT value; nothing else is registered under 12 or 14 in a file.
   */
  RawDlt12 = 12,
  RawDlt14 = 14,
  Raw = 101,
  Loop = 108,
  LinuxSll = 113,
  Ipv4 = 228,
  Ipv6 = 229,
  Nflog = 239,
  LinuxSll2 = 276,
  DsaTagDsa = 284,
  DsaTagEdsa = 285,
}

/** Names for the warning about skipped link types: what captures of other kinds usually carry. */
const NAMES = new Map<number, string>([
  [0, 'NULL'],
  [1, 'ETHERNET'],
  [6, 'IEEE802_5'],
  [9, 'PPP'],
  [10, 'FDDI'],
  [50, 'PPP_HDLC'],
  [51, 'PPP_ETHER'],
  [101, 'RAW'],
  [104, 'C_HDLC'],
  [105, 'IEEE802_11'],
  [107, 'FRELAY'],
  [108, 'LOOP'],
  [113, 'LINUX_SLL'],
  [119, 'IEEE802_11_PRISM'],
  [127, 'IEEE802_11_RADIOTAP'],
  [143, 'DOCSIS'],
  [163, 'IEEE802_11_AVS'],
  [187, 'BLUETOOTH_HCI_H4'],
  [189, 'USB_LINUX'],
  [192, 'PPI'],
  [195, 'IEEE802_15_4_WITHFCS'],
  [197, 'ERF'],
  [201, 'BLUETOOTH_HCI_H4_WITH_PHDR'],
  [219, 'MPLS'],
  [220, 'USB_LINUX_MMAPPED'],
  [226, 'IPNET'],
  [227, 'CAN_SOCKETCAN'],
  [228, 'IPV4'],
  [229, 'IPV6'],
  [230, 'IEEE802_15_4_NOFCS'],
  [239, 'NFLOG'],
  [240, 'NETANALYZER'],
  [242, 'IPOIB'],
  [249, 'USBPCAP'],
  [251, 'BLUETOOTH_LE_LL'],
  [252, 'WIRESHARK_UPPER_PDU'],
  [253, 'NETLINK'],
  [258, 'PKTAP'],
  [271, 'VSOCK'],
  [274, 'ETHERNET_MPACKET'],
  [276, 'LINUX_SLL2'],
  [281, 'DSA_TAG_BRCM'],
  [282, 'DSA_TAG_BRCM_PREPEND'],
  [284, 'DSA_TAG_DSA'],
  [285, 'DSA_TAG_EDSA'],
]);

/** The LINKTYPE_ name without its prefix ("ETHERNET"), or the number itself when not in the table. */
export function linkTypeName(linkType: number): string {
  return NAMES.get(linkType) ?? String(linkType);
}
