import { mkdir, open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageCorruptionError } from './entry-codec.js';

/**
 * The files that hold the broker's log segments, behind an interface so that tests can put a
 * disk in their place that loses what was never synced (test/storage/sim-disk.ts): `kill -9`
 * keeps the page cache, so only a simulated disk shows what a power cut does to a torn tail.
 */

export interface SegmentFile {
  /** Bytes written so far (synced or not): the next append starts here. */
  readonly sizeBytes: number;
  /** Appends the chunks, in order, at the end of the file. */
  append(chunks: readonly Uint8Array[]): Promise<void>;
  /** fdatasync: every byte appended before the call is on stable storage when it resolves. */
  sync(): Promise<void>;
  /** Cuts the file to `sizeBytes` (a torn tail) and syncs the cut. */
  truncate(sizeBytes: number): Promise<void>;
  close(): Promise<void>;
}

export interface SegmentDisk {
  /** Ids of the segments present, ascending. */
  list(): Promise<number[]>;
  /** Opens an existing segment for appending. */
  open(id: number): Promise<SegmentFile>;
  /** Creates an empty segment; its directory entry is durable when this resolves. */
  create(id: number): Promise<SegmentFile>;
  /** Reads exactly `length` bytes at `offset`; a short read is corruption. */
  read(id: number, offset: number, length: number): Promise<Buffer>;
  /** Deletes a segment (a segment no pointer refers to any more). */
  remove(id: number): Promise<void>;
  close(): Promise<void>;
}

const SUFFIX = '.seg';
/** Read handles kept open; the least recently used beyond this are closed. */
const MAX_READ_HANDLES = 32;

function fileName(id: number): string {
  return `${String(id).padStart(12, '0')}${SUFFIX}`;
}

class NodeSegmentFile implements SegmentFile {
  constructor(
    private readonly handle: FileHandle,
    public sizeBytes: number,
  ) {}

  async append(chunks: readonly Uint8Array[]): Promise<void> {
    let expected = 0;
    for (const chunk of chunks) expected += chunk.byteLength;
    const { bytesWritten } = await this.handle.writev(chunks, this.sizeBytes);
    // writev may write less than asked (a full disk); what it wrote is an unacknowledged tail
    // that recovery truncates, so failing here is enough.
    if (bytesWritten !== expected) {
      throw new Error(`segment write of ${expected} bytes wrote ${bytesWritten}`);
    }
    this.sizeBytes += expected;
  }

  async sync(): Promise<void> {
    await this.handle.datasync();
  }

  async truncate(sizeBytes: number): Promise<void> {
    await this.handle.truncate(sizeBytes);
    await this.handle.sync();
    this.sizeBytes = sizeBytes;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

class NodeSegmentDisk implements SegmentDisk {
  /** Insertion order is recency order (a hit is re-inserted). */
  private readonly readHandles = new Map<number, Promise<FileHandle>>();
  private readonly readsInFlight = new Map<number, number>();

  constructor(private readonly dir: string) {}

  async list(): Promise<number[]> {
    const names = await readdir(this.dir);
    return names
      .filter((name) => name.endsWith(SUFFIX))
      .map((name) => Number(name.slice(0, -SUFFIX.length)))
      .filter((id) => Number.isSafeInteger(id))
      .sort((a, b) => a - b);
  }

  async open(id: number): Promise<SegmentFile> {
    const handle = await open(join(this.dir, fileName(id)), 'r+');
    const { size } = await handle.stat();
    return new NodeSegmentFile(handle, size);
  }

  async create(id: number): Promise<SegmentFile> {
    const handle = await open(join(this.dir, fileName(id)), 'wx+');
    await this.syncDirectory();
    return new NodeSegmentFile(handle, 0);
  }

  async read(id: number, offset: number, length: number): Promise<Buffer> {
    this.readsInFlight.set(id, (this.readsInFlight.get(id) ?? 0) + 1);
    try {
      const handle = await this.readHandle(id);
      const out = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, offset + done);
        if (bytesRead === 0) {
          throw new StorageCorruptionError(
            `segment ${id}: ${length} bytes at ${offset} run past the end of the file`,
          );
        }
        done += bytesRead;
      }
      return out;
    } finally {
      const left = (this.readsInFlight.get(id) ?? 1) - 1;
      if (left === 0) this.readsInFlight.delete(id);
      else this.readsInFlight.set(id, left);
    }
  }

  async remove(id: number): Promise<void> {
    const handle = this.readHandles.get(id);
    this.readHandles.delete(id);
    if (handle !== undefined) await (await handle).close();
    await unlink(join(this.dir, fileName(id)));
  }

  async close(): Promise<void> {
    const handles = [...this.readHandles.values()];
    this.readHandles.clear();
    for (const handle of handles) await (await handle).close();
  }

  private readHandle(id: number): Promise<FileHandle> {
    const cached = this.readHandles.get(id);
    if (cached !== undefined) {
      this.readHandles.delete(id);
      this.readHandles.set(id, cached);
      return cached;
    }
    const opening = open(join(this.dir, fileName(id)), 'r');
    this.readHandles.set(id, opening);
    opening.catch(() => this.readHandles.delete(id));
    this.evictReadHandles();
    return opening;
  }

  private evictReadHandles(): void {
    for (const [id, handle] of this.readHandles) {
      if (this.readHandles.size <= MAX_READ_HANDLES) return;
      if (this.readsInFlight.has(id)) continue;
      this.readHandles.delete(id);
      void handle.then((h) => h.close()).catch(() => undefined);
    }
  }

  /** A new file's name is durable only once its directory is synced. */
  private async syncDirectory(): Promise<void> {
    const dirHandle = await open(this.dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  }
}

/** Segments as files `<12-digit id>.seg` in `dir` (created if missing). */
export async function openSegmentDisk(dir: string): Promise<SegmentDisk> {
  await mkdir(dir, { recursive: true });
  return new NodeSegmentDisk(dir);
}
