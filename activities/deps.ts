import type { Client } from '@temporalio/client';
import type { Db } from '../lib/db';
import type { RingmasterConfig } from '../lib/config';
import type { BuilderConnectionPool } from './build/ssh-connection';

/** What every activity factory is made from: the worker builds one and passes it to `createActivities`. */
export interface ActivityDeps {
  db: Db;
  config: RingmasterConfig;
  /** A Temporal client: activities start build workflows and signal the dispatcher. */
  client: Client;
  taskQueue: string;
  /** One SSH connection per builder, shared by every step on this worker. */
  builderPool: BuilderConnectionPool;
}
