import { loadConfig, type RingmasterConfig } from '../lib/config';
import { createDb } from '../lib/db';
import { connectTemporal } from '../api/temporal';
import { startApi } from '../api/server';
import { componentLogger } from '../lib/logger';
import { version } from '../lib/version';
import { onStopSignal, required } from './process-lifecycle';

/** `npm run api`: the API alone, against the addresses it is given. */
export async function runApiProcess(config: RingmasterConfig = loadConfig()): Promise<void> {
  const db = createDb(required(config.databaseUrl, 'DATABASE_URL'), { max: config.dbPoolMax });
  const temporal = await connectTemporal(required(config.temporalAddress, 'TEMPORAL_ADDRESS'), config.temporalNamespace, config.taskQueue);
  const api = await startApi({ db, config, temporal, startedAt: new Date(), version }, config.port, config.host, (l) => console.error(l));
  componentLogger('api').info(`listening on ${api.url}`);
  onStopSignal(async () => {
    await api.close();
    await temporal.connection.close();
    await db.destroy();
  });
}
