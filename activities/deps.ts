import type { Db } from '../lib/db';
import type { RingmasterConfig } from '../lib/config';
import type { BuilderConnectionPool } from './realise/ssh-connection';
import type { RingmasterWorkflows } from '../lib/workflow-client';
import type { Logger } from '../lib/logger';

/** What every activity factory is made from: the worker builds one and passes it to `createActivities`. */
export interface ActivityDeps {
  db: Db;
  config: RingmasterConfig;
  /** Activities start build workflows, attach builds to derivations and signal the dispatcher through it. */
  workflows: RingmasterWorkflows;
  /** One SSH connection per builder, shared by every step on this worker. */
  builderPool: BuilderConnectionPool;
  /** Operator lines (evaluations, builds, builder failures) go here. */
  logger: Logger;
}
