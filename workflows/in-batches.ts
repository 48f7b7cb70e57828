/** Temporal fails a workflow task that leaves more than 2,000 signals to other workflows pending. */
export const SIGNALS_AT_ONCE = 500;

/**
 * Calls `send` for every item, `size` at a time: each batch goes out in one workflow task, and the
 * next waits for it, so a workflow never has more than `size` signals pending. (Pure: workflow code.)
 */
export async function inBatches<T>(items: readonly T[], send: (item: T) => Promise<unknown>, size = SIGNALS_AT_ONCE): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(send));
}
