import type { Knex } from 'knex';

/**
 * The binary cache: one row per store path Ringmaster has published (a build's outputs and their
 * closures), describing the compressed NAR file stored under `<data folder>/nix-cache/nar/`.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('binary_cache_paths', (t) => {
    t.text('store_path').primary();
    /** The 32-character hash part of the store path: what `/nix-cache/<hash>.narinfo` asks for. */
    t.text('hash_part').notNullable().unique();
    t.text('nar_hash').notNullable();
    t.bigInteger('nar_size').notNullable();
    t.text('file_hash').notNullable();
    t.bigInteger('file_size').notNullable();
    t.text('compression').notNullable();
    /** Full store paths. */
    t.specificType('references', 'text[]').notNullable().defaultTo('{}');
    t.text('deriver');
    t.text('ca');
    /** The build whose finishing published it first. */
    t.uuid('build_id').references('id').inTable('builds').onDelete('SET NULL');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['file_hash']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('binary_cache_paths');
}
