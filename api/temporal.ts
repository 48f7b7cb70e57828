import { Client, Connection } from '@temporalio/client';

export interface TemporalDeps {
  connection: Connection;
  client: Client;
  namespace: string;
  taskQueue: string;
}

export async function connectTemporal(address: string, namespace: string, taskQueue: string): Promise<TemporalDeps> {
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  return { connection, client, namespace, taskQueue };
}
