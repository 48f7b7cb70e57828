// What a run left in Temporal against its limits: every workflow run's history length and size, and the
// largest payload in the biggest histories (Temporal warns from 10,240 events and from 256 KB a payload).
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

export interface RunSize {
  type: string;
  workflowId: string;
  runId: string;
  status: string;
  events: number;
  bytes: number;
}

/**
 * Every workflow run in the namespace (closed runs and runs that continued as new included). A closed
 * run's figures are those visibility recorded at its close; a running one is described, since visibility
 * does not follow its history.
 */
export async function listRunSizes(client: Client): Promise<RunSize[]> {
  const infos: WorkflowExecutionInfo[] = [];
  for await (const info of client.workflow.list()) infos.push(info);
  const sizes: RunSize[] = [];
  for (const info of infos) {
    let { historyLength: events, historySize: bytes } = info;
    if (info.status.name === 'RUNNING') {
      const described = await client.workflow.getHandle(info.workflowId, info.runId).describe();
      events = described.historyLength;
      bytes = described.historySize;
    }
    sizes.push({ type: info.type, workflowId: info.workflowId, runId: info.runId, status: info.status.name, events, bytes: bytes ?? 0 });
  }
  return sizes;
}

export interface LargestPayload {
  bytes: number;
  workflowId: string;
  runId: string;
  eventId: number;
  /** The event's type and the field that holds the payload, e.g. `WORKFLOW_EXECUTION_SIGNALED.workflowExecutionSignaledEventAttributes.input`. */
  where: string;
}

type Payload = temporal.api.common.v1.IPayload;

/** An event's type without its prefix, e.g. `WORKFLOW_EXECUTION_STARTED` (decoded histories hold the enum's number). */
export function eventTypeName(event: temporal.api.history.v1.IHistoryEvent): string {
  return (temporal.api.enums.v1.EventType[event.eventType ?? 0] ?? String(event.eventType)).replace(/^EVENT_TYPE_/, '');
}

function payloadBytes(p: Payload): number {
  let bytes = p.data?.length ?? 0;
  for (const [key, value] of Object.entries(p.metadata ?? {})) bytes += key.length + (value?.length ?? 0);
  return bytes;
}

/**
 * The largest payload of one run's history: a `Payloads` group (an input, a result, a signal's
 * arguments, a marker's details) counts as one, as Temporal's size check does; a lone `Payload` (a search
 * attribute, a memo field) counts alone.
 */
export async function largestPayloadOf(client: Client, run: Pick<RunSize, 'workflowId' | 'runId'>): Promise<LargestPayload | undefined> {
  const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
  let largest: LargestPayload | undefined;
  const note = (bytes: number, eventId: number, where: string) => {
    if (!largest || bytes > largest.bytes) largest = { bytes, workflowId: run.workflowId, runId: run.runId, eventId, where };
  };
  const walk = (node: unknown, eventId: number, where: string): void => {
    if (node === null || typeof node !== 'object' || node instanceof Uint8Array) return;
    if (Array.isArray(node)) {
      for (const item of node) walk(item, eventId, where);
      return;
    }
    const record = node as Record<string, unknown>;
    if (Array.isArray(record.payloads)) {
      note((record.payloads as Payload[]).reduce((sum, p) => sum + payloadBytes(p), 0), eventId, where);
      return;
    }
    if (record.data instanceof Uint8Array && 'metadata' in record) {
      note(payloadBytes(record as Payload), eventId, where);
      return;
    }
    for (const [key, value] of Object.entries(record)) walk(value, eventId, `${where}.${key}`);
  };
  for (const event of history.events ?? []) {
    walk(event, Number(event.eventId ?? 0), eventTypeName(event));
  }
  return largest;
}
