/** A min-heap of timed events; ties keep insertion order, so runs are deterministic. */
export class EventQueue<T> {
  private readonly heap: Array<{ at: number; seq: number; event: T }> = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(at: number, event: T): void {
    this.heap.push({ at, seq: this.seq++, event });
    let i = this.heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { at: number; event: T } | undefined {
    const top = this.heap[0];
    if (top === undefined) return undefined;
    const last = this.heap.pop() as { at: number; seq: number; event: T };
    if (this.heap.length > 0) {
      this.heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.heap.length && this.less(l, m)) m = l;
        if (r < this.heap.length && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return { at: top.at, event: top.event };
  }

  private less(i: number, j: number): boolean {
    const a = this.heap[i] as { at: number; seq: number };
    const b = this.heap[j] as { at: number; seq: number };
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    const t = this.heap[i] as { at: number; seq: number; event: T };
    this.heap[i] = this.heap[j] as { at: number; seq: number; event: T };
    this.heap[j] = t;
  }
}
