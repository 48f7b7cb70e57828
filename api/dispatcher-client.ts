import type { TemporalDeps } from './temporal';

/** Tells the running dispatcher that the builders changed, so it reloads them (no dispatcher yet: nothing to do). */
export async function notifyDispatcherOfBuilders(temporal: TemporalDeps | undefined): Promise<void> {
  if (!temporal) return;
  try {
    // False when no dispatcher has run yet: it starts with the first build step and loads builders then.
    await temporal.workflows.notifyDispatcherOfBuilders();
  } catch (err) {
    console.error(`could not tell the dispatcher about builder changes: ${(err as Error).message}`);
  }
}
