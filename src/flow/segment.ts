/**
 * What the flow tracker concluded about one TCP segment, handed to observers (detectors, the ladder
 * view) after the conversation's state was updated. One Segment object is reused for every packet:
 * observers copy what they keep.
 */

/** Annotations: bit flags, several may be set on one segment. */
export const Note = {
  /** Occupies sequence space (payload, SYN or FIN) beyond anything this side sent before. */
  NewData: 1 << 0,
  /** Re-sends sequence space this side had already sent (RTO, tail-loss probe, fast retransmit). */
  Retransmission: 1 << 1,
  /** A SYN (or SYN-ACK) sent again with the same initial sequence number. */
  SynRetransmission: 1 << 2,
  /** Zero or one byte at snd.una-1 while the peer's window is open: a TCP keep-alive probe. */
  KeepAlive: 1 << 3,
  /** The same probe shape while the peer advertises a zero window: a persist (zero-window) probe. */
  ZeroWindowProbe: 1 << 4,
  /** Advertises a receive window of zero. */
  ZeroWindow: 1 << 5,
  /** Re-opens a window this side had advertised as zero. */
  WindowReopened: 1 << 6,
  /** Pure ACK repeating the previous ACK and window while the peer has data outstanding. */
  DupAck: 1 << 7,
  /** Acknowledges sequence space the peer had not acknowledged before. */
  AckProgress: 1 << 8,
  /** Starts beyond this side's highest sequence: the capture missed earlier segments. */
  PreviousNotCaptured: 1 << 9,
  /** Fills a hole below this side's highest sequence soon after the hole appeared. */
  OutOfOrder: 1 << 10,
  /** Acknowledges bytes the capture never saw the peer send (capture loss, not network loss). */
  AckedUnseen: 1 << 11,
  /**
   * A non-SYN segment answering a SYN on a tuple that was just used: the acknowledgement belongs to
   * the previous conversation's sequence space (a TIME_WAIT socket's ACK, RFC 793 / RFC 5961).
   */
  AckOfPreviousConversation: 1 << 12,
  /** Sent after this conversation had already been reset. */
  AfterReset: 1 << 13,
  /** Carries the RST flag. */
  Reset: 1 << 14,
  /** Carries the FIN flag (new or retransmitted). */
  Fin: 1 << 15,
} as const;

/** Interest mask for observers that want every segment. */
export const ALL_SEGMENTS = 0x7fffffff;

export class Segment {
  /** Frame number within its input and capture time in seconds since the epoch. */
  frame = 0;
  time = 0;
  fromClient = true;
  flags = 0;
  /** Raw sequence and acknowledgement numbers (unsigned 32-bit). */
  seq = 0;
  ack = 0;
  payloadLength = 0;
  /** Window in bytes after scaling, when the scale is known (else the raw field). */
  window = 0;
  ttl = 0;
  ipId = -1;
  hasTimestamp = false;
  sackBlocks = 0;
  /** Note bits. */
  notes = 0;
  /** Seconds since the previous packet of this conversation in either direction (0 for the first). */
  idleBefore = 0;
  /**
   * 32-bit FNV-1a hash of the payload, for observers that match packets across captures
   * (`connscope correlate`). Computed by the AnalysisSession only when SessionOptions.payloadHash
   * is set, and only for the session's segmentObserver; 0 otherwise, and 0 when the payload is
   * empty or not captured in full (snaplen).
   */
  payloadHash = 0;
}
