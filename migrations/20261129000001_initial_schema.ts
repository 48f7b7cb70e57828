import type { Knex } from 'knex';

/**
 * The data model that all 104 routes of the circus API need. IDs are UUIDs, timestamps timestamptz.
 * Postgres is the read model: the API lists and pages from it, activities write it.
 */
export async function up(knex: Knex): Promise<void> {
  const id = (t: Knex.CreateTableBuilder) => t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
  const stamps = (t: Knex.CreateTableBuilder) => {
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  };

  await knex.schema.createTable('projects', (t) => {
    id(t);
    t.text('name').notNullable().unique();
    t.text('display_name');
    t.text('description');
    t.text('repository_url').notNullable();
    t.text('homepage');
    t.boolean('enabled').notNullable().defaultTo(true);
    t.boolean('cache_enabled').notNullable().defaultTo(true);
    stamps(t);
    t.index(['created_at', 'id']);
  });

  await knex.schema.createTable('jobsets', (t) => {
    id(t);
    t.uuid('project_id').notNullable().references('id').inTable('projects').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('description');
    t.text('nix_expression').notNullable();
    t.boolean('flake_mode').notNullable().defaultTo(false);
    t.boolean('enabled').notNullable().defaultTo(true);
    t.integer('check_interval').notNullable().defaultTo(0);
    t.text('trigger_mode').notNullable().defaultTo('source_change');
    t.text('state').notNullable().defaultTo('enabled');
    t.text('branch');
    t.text('branch_pattern');
    t.text('tag_pattern');
    t.integer('scheduling_shares').notNullable().defaultTo(100);
    t.integer('keep_nr').notNullable().defaultTo(3);
    t.specificType('systems', 'text[]');
    t.boolean('only_build_latest').notNullable().defaultTo(false);
    t.specificType('path_filters', 'text[]');
    t.integer('build_timeout').notNullable().defaultTo(36000);
    t.integer('max_silent').notNullable().defaultTo(7200);
    t.text('error_message');
    t.timestamp('last_checked_at', { useTz: true });
    stamps(t);
    t.unique(['project_id', 'name']);
    t.index(['project_id', 'created_at', 'id']);
  });

  await knex.schema.createTable('jobset_inputs', (t) => {
    id(t);
    t.uuid('jobset_id').notNullable().references('id').inTable('jobsets').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('input_type').notNullable();
    t.text('value').notNullable();
    t.text('revision');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['jobset_id', 'name']);
  });

  await knex.schema.createTable('evaluations', (t) => {
    id(t);
    t.uuid('jobset_id').notNullable().references('id').inTable('jobsets').onDelete('CASCADE');
    t.text('commit_hash');
    t.text('branch');
    t.timestamp('evaluation_time', { useTz: true });
    t.text('status').notNullable().defaultTo('pending');
    t.text('error_message');
    t.text('inputs_hash');
    t.text('trigger_kind').notNullable().defaultTo('manual');
    t.boolean('hidden').notNullable().defaultTo(false);
    t.text('source_scope');
    t.uuid('superseded_by').references('id').inTable('evaluations').onDelete('SET NULL');
    t.text('workflow_id');
    t.integer('nr_jobs');
    t.integer('nr_errors');
    t.timestamp('started_at', { useTz: true });
    t.timestamp('completed_at', { useTz: true });
    stamps(t);
    t.index(['jobset_id', 'created_at']);
    t.index(['jobset_id', 'inputs_hash']);
    t.index(['status', 'created_at']);
    t.index(['created_at', 'id']);
  });

  await knex.schema.createTable('evaluation_inputs', (t) => {
    id(t);
    t.uuid('evaluation_id').notNullable().references('id').inTable('evaluations').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('input_type').notNullable();
    t.text('value');
    t.text('revision');
    t.text('store_path');
    t.uuid('dependency_build_id');
    t.unique(['evaluation_id', 'name']);
  });

  await knex.schema.createTable('evaluation_errors', (t) => {
    id(t);
    t.uuid('evaluation_id').notNullable().references('id').inTable('evaluations').onDelete('CASCADE');
    t.text('job_name').notNullable();
    t.text('error_message').notNullable();
    t.index(['evaluation_id']);
  });

  await knex.schema.createTable('remote_builders', (t) => {
    id(t);
    t.text('name').notNullable().unique();
    t.text('ssh_uri').notNullable();
    t.specificType('systems', 'text[]').notNullable().defaultTo('{}');
    t.integer('max_jobs').notNullable().defaultTo(1);
    t.double('speed_factor').notNullable().defaultTo(1);
    t.specificType('supported_features', 'text[]').notNullable().defaultTo('{}');
    t.specificType('mandatory_features', 'text[]').notNullable().defaultTo('{}');
    t.boolean('enabled').notNullable().defaultTo(true);
    t.text('public_host_key');
    t.text('ssh_key_file');
    t.text('ssh_private_key');
    t.text('remote_store');
    t.integer('consecutive_failures').notNullable().defaultTo(0);
    t.timestamp('disabled_until', { useTz: true });
    t.text('last_failure');
    t.integer('cpu_cores');
    stamps(t);
  });

  await knex.schema.createTable('builds', (t) => {
    id(t);
    t.uuid('evaluation_id').notNullable().references('id').inTable('evaluations').onDelete('CASCADE');
    t.uuid('jobset_id').notNullable().references('id').inTable('jobsets').onDelete('CASCADE');
    t.uuid('project_id').notNullable().references('id').inTable('projects').onDelete('CASCADE');
    t.text('job_name').notNullable();
    t.text('drv_path').notNullable();
    t.text('system').notNullable();
    t.text('status').notNullable().defaultTo('pending');
    t.integer('priority').notNullable().defaultTo(0);
    t.jsonb('outputs').notNullable().defaultTo('{}');
    t.text('build_output_path');
    t.text('log_path');
    t.text('error_message');
    t.boolean('is_aggregate').notNullable().defaultTo(false);
    t.integer('retry_count').notNullable().defaultTo(0);
    t.integer('max_retries').notNullable().defaultTo(3);
    t.uuid('builder_id').references('id').inTable('remote_builders').onDelete('SET NULL');
    t.text('agent_machine_id');
    t.boolean('keep').notNullable().defaultTo(false);
    t.boolean('signed').notNullable().defaultTo(false);
    t.boolean('is_fod').notNullable().defaultTo(false);
    t.text('meta_description');
    t.text('meta_license');
    t.text('meta_homepage');
    t.text('meta_maintainers');
    t.integer('meta_timeout');
    t.integer('meta_max_silent');
    t.specificType('required_features', 'text[]').notNullable().defaultTo('{}');
    t.bigInteger('closure_size');
    t.text('workflow_id');
    t.timestamp('started_at', { useTz: true });
    t.timestamp('completed_at', { useTz: true });
    stamps(t);
    t.unique(['evaluation_id', 'job_name']);
    t.index(['evaluation_id']);
    t.index(['status', 'created_at']);
    t.index(['drv_path']);
    t.index(['job_name']);
    t.index(['system']);
    t.index(['project_id', 'created_at']);
    t.index(['jobset_id', 'job_name', 'created_at']);
    t.index(['created_at', 'id']);
  });

  await knex.schema.createTable('build_dependencies', (t) => {
    t.uuid('build_id').notNullable().references('id').inTable('builds').onDelete('CASCADE');
    t.uuid('dependency_build_id').notNullable().references('id').inTable('builds').onDelete('CASCADE');
    t.primary(['build_id', 'dependency_build_id']);
    t.index(['dependency_build_id']);
  });

  await knex.schema.createTable('aggregate_constituents', (t) => {
    t.uuid('aggregate_build_id').notNullable().references('id').inTable('builds').onDelete('CASCADE');
    t.uuid('constituent_build_id').notNullable().references('id').inTable('builds').onDelete('CASCADE');
    t.primary(['aggregate_build_id', 'constituent_build_id']);
  });

  await knex.schema.createTable('build_steps', (t) => {
    id(t);
    t.uuid('build_id').notNullable().references('id').inTable('builds').onDelete('CASCADE');
    t.integer('step_number').notNullable();
    t.text('drv_path').notNullable();
    t.uuid('builder_id').references('id').inTable('remote_builders').onDelete('SET NULL');
    t.text('machine');
    t.text('status').notNullable().defaultTo('pending');
    t.text('phase');
    t.timestamp('started_at', { useTz: true });
    t.timestamp('completed_at', { useTz: true });
    t.integer('exit_code');
    t.text('error_message');
    t.unique(['build_id', 'step_number']);
  });

  await knex.schema.createTable('build_outputs', (t) => {
    id(t);
    t.uuid('build_id').notNullable().references('id').inTable('builds').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('path').notNullable();
    t.unique(['build_id', 'name']);
    t.index(['path']);
  });

  await knex.schema.createTable('build_products', (t) => {
    id(t);
    t.uuid('build_id').notNullable().references('id').inTable('builds').onDelete('CASCADE');
    t.text('product_type');
    t.text('subtype');
    t.text('name').notNullable();
    t.text('path').notNullable();
    t.text('sha256_hash');
    t.bigInteger('file_size');
    t.text('content_type');
    t.boolean('is_directory').notNullable().defaultTo(false);
    t.text('gc_root_path');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['build_id']);
  });

  await knex.schema.createTable('build_metrics', (t) => {
    id(t);
    t.uuid('build_id').notNullable().references('id').inTable('builds').onDelete('CASCADE');
    t.text('name').notNullable();
    t.double('value').notNullable();
    t.text('unit');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['build_id', 'name']);
  });

  await knex.schema.createTable('cached_failures', (t) => {
    t.text('drv_path').primary();
    t.uuid('build_id');
    t.text('status').notNullable();
    t.text('error_message');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('channels', (t) => {
    id(t);
    t.uuid('project_id').notNullable().references('id').inTable('projects').onDelete('CASCADE');
    t.text('name').notNullable().unique();
    t.uuid('jobset_id').notNullable().references('id').inTable('jobsets').onDelete('CASCADE');
    t.uuid('current_evaluation_id').references('id').inTable('evaluations').onDelete('SET NULL');
    stamps(t);
    t.index(['project_id']);
  });

  await knex.schema.createTable('users', (t) => {
    id(t);
    t.text('username').notNullable().unique();
    t.text('email').unique();
    t.text('full_name');
    t.text('password_hash');
    t.text('user_type').notNullable().defaultTo('local');
    t.text('role').notNullable().defaultTo('read-only');
    t.boolean('enabled').notNullable().defaultTo(true);
    t.timestamp('last_login_at', { useTz: true });
    stamps(t);
  });

  await knex.schema.createTable('user_identities', (t) => {
    id(t);
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('provider').notNullable();
    t.text('external_id').notNullable();
    t.text('external_name');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['provider', 'external_id']);
  });

  await knex.schema.createTable('api_keys', (t) => {
    id(t);
    t.text('name').notNullable();
    t.text('key_hash').notNullable().unique();
    t.text('key_prefix').notNullable();
    t.text('role').notNullable().defaultTo('read-only');
    t.uuid('user_id').references('id').inTable('users').onDelete('CASCADE');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_used_at', { useTz: true });
    t.timestamp('revoked_at', { useTz: true });
  });

  await knex.schema.createTable('sessions', (t) => {
    id(t);
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('token_hash').notNullable().unique();
    t.text('csrf_token').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('last_seen_at', { useTz: true });
  });

  await knex.schema.createTable('starred_jobs', (t) => {
    id(t);
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.uuid('project_id').notNullable().references('id').inTable('projects').onDelete('CASCADE');
    t.uuid('jobset_id').notNullable().references('id').inTable('jobsets').onDelete('CASCADE');
    t.text('job_name').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['user_id', 'jobset_id', 'job_name']);
  });

  await knex.schema.createTable('audit_log', (t) => {
    id(t);
    t.timestamp('occurred_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('actor_kind').notNullable();
    t.text('actor_id');
    t.text('actor_name');
    t.text('action').notNullable();
    t.text('target_kind');
    t.text('target_id');
    t.jsonb('details');
    t.text('remote_addr');
    t.index(['occurred_at', 'id']);
  });

  await knex.schema.createTable('news', (t) => {
    id(t);
    t.text('title').notNullable();
    t.text('content').notNullable();
    t.text('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('project_webhooks', (t) => {
    id(t);
    t.uuid('project_id').notNullable().references('id').inTable('projects').onDelete('CASCADE');
    t.text('forge_type').notNullable();
    t.text('secret').notNullable();
    t.boolean('enabled').notNullable().defaultTo(true);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['project_id', 'forge_type']);
  });

  await knex.schema.createTable('notification_tasks', (t) => {
    id(t);
    t.text('notification_type').notNullable();
    t.jsonb('payload').notNullable();
    t.text('status').notNullable().defaultTo('pending');
    t.integer('attempts').notNullable().defaultTo(0);
    t.integer('max_attempts').notNullable().defaultTo(5);
    t.timestamp('next_retry_at', { useTz: true });
    t.text('last_error');
    t.text('workflow_id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('completed_at', { useTz: true });
    t.index(['status', 'created_at']);
  });

  await knex.schema.createTable('builder_sessions', (t) => {
    t.text('machine_id').primary();
    t.text('name').notNullable();
    t.text('hostname');
    t.specificType('systems', 'text[]').notNullable().defaultTo('{}');
    t.specificType('supported_features', 'text[]').notNullable().defaultTo('{}');
    t.specificType('mandatory_features', 'text[]').notNullable().defaultTo('{}');
    t.double('speed_factor').notNullable().defaultTo(1);
    t.integer('cpu_count');
    t.integer('max_jobs').notNullable().defaultTo(1);
    t.integer('current_jobs').notNullable().defaultTo(0);
    t.timestamp('last_seen', { useTz: true });
    t.double('load1');
    t.double('load5');
    t.double('load15');
    t.bigInteger('mem_total');
    t.bigInteger('mem_used');
    t.bigInteger('store_free');
    t.boolean('connected').notNullable().defaultTo(false);
    t.integer('builds_succeeded').notNullable().defaultTo(0);
    t.integer('builds_failed').notNullable().defaultTo(0);
    t.integer('consecutive_failures').notNullable().defaultTo(0);
    t.timestamp('disabled_until', { useTz: true });
    stamps(t);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    'builder_sessions', 'notification_tasks', 'project_webhooks', 'news', 'audit_log', 'starred_jobs', 'sessions',
    'api_keys', 'user_identities', 'users', 'channels', 'cached_failures', 'build_metrics', 'build_products',
    'build_outputs', 'build_steps', 'aggregate_constituents', 'build_dependencies', 'builds', 'remote_builders',
    'evaluation_errors', 'evaluation_inputs', 'evaluations', 'jobset_inputs', 'jobsets', 'projects',
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}
