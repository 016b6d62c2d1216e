import { TcpFlag } from '../../decode/packet.js';
import type { Conversation } from '../../flow/conversation.js';
import { Note, type Segment } from '../../flow/segment.js';
import type { DetectorSpec } from '../detector.js';
import type { EndpointRef } from '../finding.js';
import { CappedGroups, maxServersThreshold } from '../capped.js';
import { LINUX_TIME_WAIT_SECONDS } from '../knowledge.js';
import { endpointsOf, humanSeconds, median, round } from '../util.js';
import { clientText, gapText, isnDistance, type PreviousConversation, previousOf, serverKey } from './tuple-reuse.js';

type Thresholds = {
  timeWaitSeconds: number;
  maxListed: number;
  maxServers: number;
};

/** A new connection on a tuple whose previous conversation closed with FINs less than TIME_WAIT ago. */
class Reuse {
  convId = 0;
  client = '';
  previous: PreviousConversation | null = null;
  synFrame = 0;
  synTime = 0;
  isn = 0;
  synTimestamps = false;
  /** The server answered with an ACK of the old conversation: a collision, not a clean reuse. */
  collided = false;
}

class Group {
  readonly listed: Reuse[] = [];
  readonly gaps: number[] = [];
  readonly conversations: number[] = [];
  total = 0;
  heldByServer = 0;
  heldByClient = 0;
  acceptedByTimestamps = 0;
  acceptedByHigherIsn = 0;
  readonly client: EndpointRef;
  readonly server: EndpointRef;
  start = Infinity;
  end = 0;
  constructor(endpoints: { client: EndpointRef; server: EndpointRef }) {
    this.client = endpoints.client;
    this.server = endpoints.server;
  }
}

/** Gaps kept per server for the median: enough for a stable value without unbounded memory. */
const MAX_GAPS = 10_000;
/** Gaps kept over all servers (8 MB), so that many servers do not multiply the above. */
const MAX_GAPS_TOTAL = 1_000_000;
const MAX_CONVERSATION_IDS = 1000;

export const portReuse: DetectorSpec<Thresholds> = {
  id: 'port-reuse',
  title: 'Tuple reused inside TIME_WAIT (accepted)',
  severity: 'info',
  summary: 'A new connection reused the exact 4-tuple of one that closed less than TIME_WAIT ago, and the server accepted it.',
  explanation: [
    'The side that closes a TCP connection first keeps its 4-tuple in TIME_WAIT (60 s on Linux). A new',
    'connection on the same tuple inside that time works when the TIME_WAIT holder can tell it is new:',
    'the server was not the one in TIME_WAIT (the client closed first and reused its own port, e.g. with',
    'net.ipv4.tcp_tw_reuse, or a NAT reused it), or the new SYN carries a higher TCP timestamp (RFC 6191)',
    'or an initial sequence number above the old connection\'s. This is information, not a failure: it',
    'shows ports being recycled fast enough that a TIME_WAIT collision (see timewait-collision) is one',
    'unlucky ISN or timestamp away. Reuses are grouped per server, with the gaps and why each was accepted.',
  ].join(' '),
  evidence: {
    server: 'the server ip:port',
    reuses: 'connections that reused a tuple inside TIME_WAIT and got a SYN-ACK',
    medianGapSeconds: 'median time from the previous conversation\'s close to the new SYN',
    minGapSeconds: 'shortest such gap',
    timeWaitHeldBy: '{client, server}: how many of the reused tuples were in TIME_WAIT on which side',
    acceptedByTimestamps: 'reuses where the server held TIME_WAIT and both connections used timestamps',
    acceptedByHigherIsn: 'reuses where the server held TIME_WAIT and the new ISN was above the old stream',
    'listed[]': 'each reuse: conversation, previousConversation, client, gapSeconds, timeWaitHolder, isnAbovePrevious, timestamps, synFrame',
  },
  thresholds: {
    timeWaitSeconds: {
      default: LINUX_TIME_WAIT_SECONDS,
      unit: 's',
      description: 'a tuple reused sooner than this after its previous conversation closed counts as reuse inside TIME_WAIT',
    },
    maxListed: { default: 20, unit: 'reuses', description: 'reuses listed in full per server (all are counted)' },
    maxServers: maxServersThreshold('servers with reused tuples'),
  },
  advice: [
    'Nothing is broken; but a tuple recycled within TIME_WAIT means ports are churning: persistent connections (keep-alive, pools) remove the churn.',
    'Keep TCP timestamps enabled on both ends (net.ipv4.tcp_timestamps = 1): they are what lets a TIME_WAIT server accept the reuse safely.',
    'If a SNAT device does the reuse, give it more ports/addresses (larger SNAT pool) so a tuple is not reused within 60 s.',
  ],
  create({ thresholds, slot, report, cap }) {
    const groups = new CappedGroups<Group>(cap(thresholds.maxServers, 'servers with reused tuples followed', 'reuses towards further servers not analysed'));
    const gapsKept = cap(MAX_GAPS_TOTAL, 'reuse gaps kept', 'reuse gaps left out of the medians');
    let lastFinalized: Conversation | null = null;

    const emit = (group: Group, key: string): void => {
      const gaps = group.gaps;
      const first = group.listed[0];
      const prev = first.previous as PreviousConversation;
      const gap = first.synTime - (prev.closeTime as number);
      const why = (r: Reuse): string => {
        const p = r.previous as PreviousConversation;
        if (p.timeWaitHolder !== 'server') return 'the server was not in TIME_WAIT (the client had closed first)';
        if (p.timestamps && r.synTimestamps) return 'both connections carried TCP timestamps, so the newer SYN was recognisable';
        return `its ISN lies ${isnDistance(r.isn, p)} above the old connection's last sequence number`;
      };
      report({
        key,
        severity: 'info',
        title: `${group.total} connection${group.total > 1 ? 's' : ''} reused a tuple inside TIME_WAIT towards ${key}`,
        conversations: group.conversations,
        client: group.total === 1 ? group.client : null,
        server: group.server,
        start: group.start,
        end: group.end,
        evidence: {
          server: key,
          reuses: group.total,
          medianGapSeconds: round(median(gaps)),
          minGapSeconds: round(Math.min(...gaps)),
          timeWaitHeldBy: { client: group.heldByClient, server: group.heldByServer },
          acceptedByTimestamps: group.acceptedByTimestamps,
          acceptedByHigherIsn: group.acceptedByHigherIsn,
          listed: group.listed.map((r) => {
            const p = r.previous as PreviousConversation;
            return {
              conversation: r.convId,
              previousConversation: p.id,
              client: r.client,
              gapSeconds: round(r.synTime - (p.closeTime as number)),
              timeWaitHolder: p.timeWaitHolder,
              isnAbovePrevious: isnDistance(r.isn, p) > 0,
              timestamps: { previous: p.timestamps, syn: r.synTimestamps },
              synFrame: r.synFrame,
            };
          }),
        },
        explanation: `Conversation #${first.convId} ${first.client} -> ${key} (SYN frame ${first.synFrame}) reused the ports of conversation #${prev.id} only ${gapText(gap)} after it closed, inside the ${humanSeconds(thresholds.timeWaitSeconds)} TIME_WAIT, and got a SYN-ACK: ${why(first)}.` +
          (group.total > 1 ? ` ${group.total} connections to this server did the same (median gap ${gapText(median(gaps))}).` : ''),
        advice: portReuse.advice,
      });
    };

    return {
      interest: Note.NewData | Note.AckOfPreviousConversation,
      onSegment(conv: Conversation, seg: Segment) {
        const syn = (seg.flags & TcpFlag.SYN) !== 0;
        let reuse = conv.scratch[slot] as Reuse | undefined;
        if (reuse === undefined) {
          if (!syn || !seg.fromClient || (seg.flags & TcpFlag.ACK) !== 0 || conv.previousId <= 0) return;
          const previous = previousOf(conv, lastFinalized);
          if (previous === null || !previous.closedByFin || previous.closeTime === null) return;
          if (seg.time - previous.closeTime >= thresholds.timeWaitSeconds) return;
          reuse = new Reuse();
          reuse.convId = conv.id;
          reuse.client = clientText(conv);
          reuse.previous = previous;
          reuse.synFrame = seg.frame;
          reuse.synTime = seg.time;
          reuse.isn = seg.seq;
          reuse.synTimestamps = seg.hasTimestamp;
          conv.scratch[slot] = reuse;
          return;
        }
        if ((seg.notes & Note.AckOfPreviousConversation) !== 0) {
          reuse.collided = true;
          return;
        }
        if (!syn || seg.fromClient || reuse.collided || (seg.notes & Note.NewData) === 0) return;
        // The SYN-ACK of an attempt that met no stale ACK: an accepted reuse.
        const key = serverKey(conv);
        const group = groups.obtain(key, () => new Group(endpointsOf(conv)));
        if (group === null) return;
        const prev = reuse.previous as PreviousConversation;
        group.total++;
        if (group.gaps.length >= MAX_GAPS) gapsKept.refuse();
        else if (gapsKept.take()) group.gaps.push(reuse.synTime - (prev.closeTime as number));
        if (group.conversations.length < MAX_CONVERSATION_IDS) group.conversations.push(conv.id);
        if (group.listed.length < thresholds.maxListed) group.listed.push(reuse);
        if (prev.timeWaitHolder === 'server') {
          group.heldByServer++;
          if (prev.timestamps && reuse.synTimestamps) group.acceptedByTimestamps++;
          else if (isnDistance(reuse.isn, prev) > 0) group.acceptedByHigherIsn++;
        } else if (prev.timeWaitHolder === 'client') {
          group.heldByClient++;
        }
        if (reuse.synTime < group.start) group.start = reuse.synTime;
        if (seg.time > group.end) group.end = seg.time;
        emit(group, key);
      },
      onFinalize(conv: Conversation) {
        lastFinalized = conv;
      },
    };
  },
};
