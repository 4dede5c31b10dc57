export { RawNode, type Ready, type Status } from './raw-node.js';
export type { RaftConfig, UnsafeSwitches } from './config.js';
export { CorruptStateError, ProposalDroppedError, RaftInvariantError } from './errors.js';
export {
  EMPTY_HARD_STATE,
  EntryType,
  MessageType,
  NONE,
  Role,
  type Entry,
  type HardState,
  type InitialState,
  type LoadRequest,
  type LoadResult,
  type Message,
  type NodeId,
} from './types.js';
