import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, verifyDecoyPassword, verifyPassword } from '../../lib/password-hash';

describe('password hashing', () => {
  it('a hash verifies its own password and no other', async () => {
    const stored = await hashPassword('correct horse battery');
    assert.equal(await verifyPassword(stored, 'correct horse battery'), true);
    assert.equal(await verifyPassword(stored, 'correct horse batterY'), false);
    assert.ok(!stored.includes('correct horse'));
  });

  it('every new hash is argon2id, salted afresh', async () => {
    const a = await hashPassword('same password');
    const b = await hashPassword('same password');
    assert.match(a, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    assert.match(b, /^\$argon2id\$/);
    assert.notEqual(a, b);
  });

  it('a stored argon2id hash with other cost parameters (the old argon2 package defaults) still verifies', async () => {
    const stored = '$argon2id$v=19$m=65536,t=3,p=4$oTAuylrb72m5Hw9a3m9bjw$i8CTQyMNUYJ3cttXuaMyAHah/dOSjBSY0ZdGsKk+TS4';
    assert.equal(await verifyPassword(stored, 'hunter22'), true);
    assert.equal(await verifyPassword(stored, 'hunter23'), false);
  });

  it('a stored scrypt hash from before argon2id everywhere still verifies', async () => {
    // Made once with the scrypt branch (ln=15, r=8, p=1) for the password "hunter22".
    const stored = '$scrypt$ln=15,r=8,p=1$ZU_ycbhIp6Dyh29nxnbMsA$sF33MSd-82BXTYjlwv4KQShcJOy7JXltmF_u4f2F7ZA';
    assert.equal(await verifyPassword(stored, 'hunter22'), true);
    assert.equal(await verifyPassword(stored, 'hunter23'), false);
  });

  it('unknown or malformed hashes never match', async () => {
    assert.equal(await verifyPassword('', 'x'), false);
    assert.equal(await verifyPassword('plaintext', 'plaintext'), false);
    assert.equal(await verifyPassword('$scrypt$ln=99,r=8,p=1$AA$AA', 'x'), false);
    assert.equal(await verifyPassword('$argon2id$not-a-phc-string', 'x'), false);
  });

  it('the decoy verification always refuses', async () => {
    assert.equal(await verifyDecoyPassword('anything'), false);
  });
});
