/**
 * The word, within one worker process, that a batch let builds go that it held back (issue 6): it has
 * recorded their results and dropped its `batch_extras` rows. The start activity of their evaluation,
 * which looks for such builds every HOLD_POLL_MS, looks at once instead when the batch runs in the same
 * process (the usual case); a batch in another process is still seen on the next look.
 */
const waiters = new Set<() => void>();

/** A batch released held builds: every start loop waiting in this process looks again now. */
export function heldBuildsReleased(): void {
  const now = [...waiters];
  waiters.clear();
  for (const wake of now) wake();
}

/** Waits for `sleep` (the activity's own, which a cancel ends) or for the next release in this process, whichever comes first. */
export async function untilHeldBuildsReleased(sleep: Promise<void>): Promise<void> {
  let wake!: () => void;
  const released = new Promise<void>((resolve) => (wake = resolve));
  waiters.add(wake);
  try {
    await Promise.race([sleep, released]);
  } finally {
    waiters.delete(wake);
  }
}
