/** What the `api` and `worker` commands share: a required address, and a stop on SIGINT or SIGTERM. */

export function required(value: string | undefined, name: string): string {
  if (!value) throw new Error(`${name} is required to run this part on its own (see the README's configuration table)`);
  return value;
}

export function onStopSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = () => {
    if (stopping) return;
    stopping = true;
    stop().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}
