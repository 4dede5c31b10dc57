/**
 * Raft replica ids of shard groups. A broker's replica of a shard is a member of the shard's Raft
 * group under an id that names both the broker and the replica's generation: a broker that left
 * a group (its replica moved away) and joins it again later comes back as a NEW member, with an
 * empty log, never under the id it once voted with (Raft forbids reusing a removed member's id:
 * votes and log entries of the old member would be taken for the new one's). Generation 0 is the
 * broker id itself, so groups that never moved use broker ids, as they always did.
 */

/** Broker ids stay below this so a replica id names its broker in its low bits. */
export const MAX_BROKER_ID = 65_535;
const GENERATION_STRIDE = MAX_BROKER_ID + 1;
/** Replica ids stay exact in a double (and in the wire's uint64) for any realistic history. */
const MAX_GENERATION = 2 ** 30;

export function replicaIdOf(brokerId: number, generation: number): number {
  if (!Number.isSafeInteger(brokerId) || brokerId < 1 || brokerId > MAX_BROKER_ID) {
    throw new RangeError(`broker id ${brokerId} is outside 1..${MAX_BROKER_ID}`);
  }
  if (!Number.isSafeInteger(generation) || generation < 0 || generation > MAX_GENERATION) {
    throw new RangeError(`replica generation ${generation} is out of range`);
  }
  return generation * GENERATION_STRIDE + brokerId;
}

/** The broker a replica id belongs to. */
export function brokerOfReplica(replicaId: number): number {
  return replicaId % GENERATION_STRIDE;
}

export function generationOfReplica(replicaId: number): number {
  return Math.floor(replicaId / GENERATION_STRIDE);
}
