/**
 * Group commit: items pushed in one turn of the event loop are flushed together. Each `push`
 * resolves when its batch's flush did, or rejects with the flush's error.
 */
export class Batch<T> {
  #items: { item: T; resolve: () => void; reject: (error: unknown) => void }[] = [];
  readonly #flush: (items: T[]) => Promise<void>;
  constructor(flush: (items: T[]) => Promise<void>) {
    this.#flush = flush;
  }
  push(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#items.push({ item, resolve, reject });
      if (this.#items.length === 1) setImmediate(() => void this.#run());
    });
  }
  async #run(): Promise<void> {
    const items = this.#items;
    this.#items = [];
    try {
      await this.#flush(items.map((i) => i.item));
      for (const i of items) i.resolve();
    } catch (error) {
      for (const i of items) i.reject(error);
    }
  }
}
