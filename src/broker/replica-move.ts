import { ProposalDroppedError } from '../raft/errors.js';
import type { ConfChange, ConfState, NodeId } from '../raft/types.js';

/**
 * One step of moving a shard's replica from broker `from` to broker `to`, decided on the shard's
 * leader from its own view of the group (so a step repeated after a lost answer, or by a new
 * coordinator leader, does the right next thing):
 *   1. `to` is not a member: add it as a learner (it votes on nothing while it catches up);
 *   2. `to` is a learner: once it is within `promoteLagEntries` of the leader's log, make it a
 *      voter;
 *   3. `to` votes and `from` is still a member: if `from` leads, hand leadership to the most
 *      caught-up other voter first; otherwise remove `from`;
 *   4. `to` votes and `from` is gone: done.
 * Aborting removes `to` if it is a member, unless the move already finished in the log (then it is
 * done, not undone). One membership change at a time is Raft's rule: a
 * proposal while another is pending is refused and the step waits.
 */

export type MoveAction =
  | { readonly kind: 'propose'; readonly change: ConfChange }
  | { readonly kind: 'transfer'; readonly to: NodeId }
  | { readonly kind: 'wait'; readonly why: string }
  | { readonly kind: 'done' }
  /** Undone: the target is out of the group again. */
  | { readonly kind: 'aborted' }
  | { readonly kind: 'refused'; readonly why: string };

export interface MoveView {
  /** The leader deciding. */
  readonly self: NodeId;
  readonly conf: ConfState;
  readonly lastIndex: number;
  readonly matchOf: (
    id: NodeId,
  ) => { readonly match: number; readonly recentActive: boolean } | undefined;
  readonly promoteLagEntries: number;
}

export function nextMoveAction(
  view: MoveView,
  from: NodeId,
  to: NodeId,
  abort = false,
): MoveAction {
  const { conf } = view;
  const member = (id: NodeId) => conf.voters.includes(id) || conf.learners.includes(id);
  if (abort) {
    // Finished in the log already (the source is gone): it is done, not undone.
    if (conf.voters.includes(to) && !member(from)) return { kind: 'done' };
    if (!member(to)) return { kind: 'aborted' };
    if (to === view.self) return handOver(view, to);
    return { kind: 'propose', change: { type: 'removeNode', node: to } };
  }
  if (conf.removed.includes(to)) {
    return { kind: 'refused', why: `replica ${to} was removed from this group before` };
  }
  if (!member(to)) return { kind: 'propose', change: { type: 'addLearner', node: to } };
  if (conf.learners.includes(to)) {
    const progress = view.matchOf(to);
    const lag = progress === undefined ? Number.POSITIVE_INFINITY : view.lastIndex - progress.match;
    if (progress?.recentActive !== true || lag > view.promoteLagEntries) {
      return { kind: 'wait', why: `learner ${to} is ${lag} entries behind` };
    }
    return { kind: 'propose', change: { type: 'addVoter', node: to } };
  }
  if (!member(from)) return { kind: 'done' };
  if (from === view.self) return handOver(view, from);
  return { kind: 'propose', change: { type: 'removeNode', node: from } };
}

/** The leader is the replica to remove: leadership goes to the most caught-up other voter. */
function handOver(view: MoveView, leaving: NodeId): MoveAction {
  const heir = view.conf.voters
    .filter((id) => id !== leaving)
    .map((id) => ({ id, match: view.matchOf(id)?.match ?? -1 }))
    .sort((a, b) => b.match - a.match || a.id - b.id)[0];
  if (heir === undefined) return { kind: 'wait', why: 'no other voter to lead' };
  return { kind: 'transfer', to: heir.id };
}

/** A Raft node as the step needs it (the leader's RawNode). */
export interface MovableNode {
  membership(): ConfState;
  status(): { readonly lastIndex: number };
  matchOf(id: NodeId): { readonly match: number; readonly recentActive: boolean } | undefined;
  proposeConfChange(change: ConfChange): unknown;
  transferLeadership(target: NodeId): void;
}

export type MoveOutcome =
  | { readonly state: 'done' }
  | { readonly state: 'aborted' }
  | { readonly state: 'in-progress'; readonly detail: string }
  | { readonly state: 'refused'; readonly detail: string };

/** Decides and carries out one step on the leader's node. */
export function stepMove(
  self: NodeId,
  node: MovableNode,
  request: { readonly from: NodeId; readonly to: NodeId; readonly abort?: boolean },
  promoteLagEntries: number,
): MoveOutcome {
  const action = nextMoveAction(
    {
      self,
      conf: node.membership(),
      lastIndex: node.status().lastIndex,
      matchOf: (id) => node.matchOf(id),
      promoteLagEntries,
    },
    request.from,
    request.to,
    request.abort === true,
  );
  switch (action.kind) {
    case 'done':
      return { state: 'done' };
    case 'aborted':
      return { state: 'aborted' };
    case 'refused':
      return { state: 'refused', detail: action.why };
    case 'wait':
      return { state: 'in-progress', detail: action.why };
    case 'transfer':
      node.transferLeadership(action.to);
      return { state: 'in-progress', detail: `handing leadership to ${action.to}` };
    case 'propose':
      try {
        node.proposeConfChange(action.change);
        return {
          state: 'in-progress',
          detail: `proposed ${action.change.type} ${action.change.node}`,
        };
      } catch (error) {
        // Another change is pending, or this term has committed nothing yet: next time.
        if (!(error instanceof ProposalDroppedError)) throw error;
        return { state: 'in-progress', detail: error.message };
      }
  }
}
