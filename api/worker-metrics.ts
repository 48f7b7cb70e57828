/**
 * The Temporal SDK's worker metrics, as the worker's runtime telemetry exports them (worker/telemetry.ts), read
 * from its Prometheus endpoint so that /prometheus carries them too. An empty string when the address is not
 * configured or the worker does not answer within `timeoutMs` (it may run on another machine).
 */
export async function scrapeWorkerMetrics(bindAddress: string | undefined, timeoutMs = 1000): Promise<string> {
  if (!bindAddress) return '';
  const address = bindAddress.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
  try {
    const res = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return '';
    const text = await res.text();
    return text.endsWith('\n') ? text : `${text}\n`;
  } catch {
    return '';
  }
}
