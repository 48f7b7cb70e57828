import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { isDatabaseUnavailable } from '../../lib/database-unavailable';
import { createDb } from '../../lib/db';
import { freePort } from '../../lib/processes';
import { whileDatabaseUnavailable } from '../../activities/database-retry';

describe('telling a database that is not there from a query that is wrong', () => {
  it('a connection refused by a port where no PostgreSQL listens is "unavailable", from pg and from knex', async () => {
    const port = await freePort();
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'nobody', database: 'nothing' });
    const refused = await client.connect().then(() => undefined, (err: unknown) => err);
    assert.ok(refused, 'connecting failed');
    assert.equal(isDatabaseUnavailable(refused), true);

    const db = createDb(`postgres://nobody:x@127.0.0.1:${port}/nothing`);
    try {
      const viaKnex = await db.raw('select 1').then(() => undefined, (err: unknown) => err);
      assert.equal(isDatabaseUnavailable(viaKnex), true);
    } finally {
      await db.destroy();
    }
  });

  it('PostgreSQL shutting down, starting up or dropping the connection is "unavailable"', () => {
    assert.equal(isDatabaseUnavailable(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })), true);
    assert.equal(isDatabaseUnavailable(Object.assign(new Error('the database system is starting up'), { code: '57P03' })), true);
    assert.equal(isDatabaseUnavailable(new Error('Connection terminated unexpectedly')), true);
    assert.equal(isDatabaseUnavailable(new Error('outer', { cause: Object.assign(new Error('inner'), { code: '08006' }) })), true);
  });

  it('errors about the query or the data are not "unavailable"', () => {
    assert.equal(isDatabaseUnavailable(Object.assign(new Error('duplicate key value'), { code: '23505' })), false);
    assert.equal(isDatabaseUnavailable(Object.assign(new Error('syntax error at or near "selec"'), { code: '42601' })), false);
    assert.equal(isDatabaseUnavailable(new Error('build 1 not found')), false);
    assert.equal(isDatabaseUnavailable(undefined), false);
  });
});

describe('waiting for the database', () => {
  it('runs the work again while the database is unavailable, and returns its result once it answers', async () => {
    let calls = 0;
    const result = await whileDatabaseUnavailable(async () => {
      calls++;
      if (calls < 3) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      return 'recorded';
    });
    assert.equal(result, 'recorded');
    assert.equal(calls, 3);
  });

  it('throws any other error at once, without running the work again', async () => {
    let calls = 0;
    await assert.rejects(
      whileDatabaseUnavailable(async () => {
        calls++;
        throw Object.assign(new Error('duplicate key value'), { code: '23505' });
      }),
      /duplicate key/,
    );
    assert.equal(calls, 1);
  });
});
