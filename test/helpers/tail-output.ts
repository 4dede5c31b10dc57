/** One line of `rheos tail` output. */
export interface TailLine {
  shardId: string;
  sequenceNumber: string;
  partitionKey: string;
  arrivalTime: string;
  data: string;
}

export function parseTail(stdout: string): TailLine[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as TailLine);
}
