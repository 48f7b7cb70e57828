import { Client, Connection } from '@temporalio/client';
import { RingmasterWorkflows } from '../lib/workflow-client';

export interface TemporalDeps {
  connection: Connection;
  /** For health checks and task-queue descriptions; workflows are started, signalled and cancelled through `workflows`. */
  client: Client;
  /** Every start, signal, query, update and cancel of a Ringmaster workflow. */
  workflows: RingmasterWorkflows;
  namespace: string;
  taskQueue: string;
}

export async function connectTemporal(address: string, namespace: string, taskQueue: string): Promise<TemporalDeps> {
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  return { connection, client, workflows: new RingmasterWorkflows(client, taskQueue), namespace, taskQueue };
}
