/**
 * Group commit: items pushed in one turn of the event loop are flushed together. Each `push`
 * resolves when its batch's flush did, or rejects with the flush's error.
 *
 * Every push of a batch gets the batch's one promise: no promise, resolver pair or wrapper object
 * per item (the BullMQ driver pushes every added job, tens of thousands a second).
 */
export class Batch<T> {
  #items: T[] = [];
  #flushed: Promise<void> | undefined;
  readonly #flush: (items: T[]) => Promise<void>;
  constructor(flush: (items: T[]) => Promise<void>) {
    this.#flush = flush;
  }
  push(item: T): Promise<void> {
    this.#items.push(item);
    this.#flushed ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#run());
    return this.#flushed;
  }
  #run(): Promise<void> {
    const items = this.#items;
    this.#items = [];
    this.#flushed = undefined;
    return this.#flush(items);
  }
}
