import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import type { History } from '@temporalio/common/lib/proto-utils';
import { workflowsPath } from '../../worker/bundle';
import { installRuntime } from '../../worker/runtime';
import { rootLogger } from '../../lib/logger';

export const HISTORIES_DIR = path.resolve(__dirname, '..', 'fixtures', 'histories');

/** Fetches the closed workflows' histories; with RINGMASTER_RECORD_HISTORIES=1 also saves them as fixtures. */
export async function fetchHistories(client: Client, workflowIds: string[]): Promise<Array<{ workflowId: string; history: History }>> {
  const out: Array<{ workflowId: string; history: History }> = [];
  for (const workflowId of workflowIds) {
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    out.push({ workflowId, history });
    if (process.env.RINGMASTER_RECORD_HISTORIES === '1') {
      fs.mkdirSync(HISTORIES_DIR, { recursive: true });
      const kind = workflowId.split('-')[0];
      // Binary protobuf: exact, and independent of the JSON mapping's quirks.
      fs.writeFileSync(path.join(HISTORIES_DIR, `${kind}-${workflowId.slice(-12)}.binpb`), temporal.api.history.v1.History.encode(history).finish());
    }
  }
  return out;
}

export function committedHistories(): Array<{ workflowId: string; history: History }> {
  if (!fs.existsSync(HISTORIES_DIR)) return [];
  return fs
    .readdirSync(HISTORIES_DIR)
    .filter((f) => f.endsWith('.binpb'))
    .sort()
    .map((f) => ({ workflowId: f.replace(/\.binpb$/, ''), history: temporal.api.history.v1.History.decode(fs.readFileSync(path.join(HISTORIES_DIR, f))) }));
}

/** Replays histories against the current workflow code; returns the failures (empty when all replay). */
export async function replayAll(histories: Array<{ workflowId: string; history: History }>): Promise<Array<{ workflowId: string; error: string }>> {
  const failures: Array<{ workflowId: string; error: string }> = [];
  // The SDK logs through Ringmaster's logger (warnings up), as in the worker.
  installRuntime({ logger: rootLogger() });
  for await (const result of Worker.runReplayHistories({ workflowsPath, replayName: 'ringmaster-replay' }, histories)) {
    if (result.error) failures.push({ workflowId: result.workflowId, error: String(result.error) });
  }
  return failures;
}
