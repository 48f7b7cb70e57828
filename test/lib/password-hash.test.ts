import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, loadArgon2, verifyDecoyPassword, verifyPassword } from '../../lib/password-hash';

describe('password hashing', () => {
  it('a hash verifies its own password and no other', async () => {
    const stored = await hashPassword('correct horse battery');
    assert.equal(await verifyPassword(stored, 'correct horse battery'), true);
    assert.equal(await verifyPassword(stored, 'correct horse batterY'), false);
    assert.ok(!stored.includes('correct horse'));
  });

  it('hashes are argon2id when the argon2 addon loads here, scrypt otherwise, and salted', async () => {
    const argon2 = await loadArgon2();
    const a = await hashPassword('same password');
    const b = await hashPassword('same password');
    assert.match(a, argon2 ? /^\$argon2id\$/ : /^\$scrypt\$ln=\d+,r=\d+,p=\d+\$/);
    assert.notEqual(a, b);
  });

  it('a stored scrypt hash verifies whichever hasher is current', async () => {
    // Made once with the scrypt branch (ln=15, r=8, p=1) for the password "hunter22".
    const stored = '$scrypt$ln=15,r=8,p=1$ZU_ycbhIp6Dyh29nxnbMsA$sF33MSd-82BXTYjlwv4KQShcJOy7JXltmF_u4f2F7ZA';
    assert.equal(await verifyPassword(stored, 'hunter22'), true);
    assert.equal(await verifyPassword(stored, 'hunter23'), false);
  });

  it('unknown or malformed hashes never match', async () => {
    assert.equal(await verifyPassword('', 'x'), false);
    assert.equal(await verifyPassword('plaintext', 'plaintext'), false);
    assert.equal(await verifyPassword('$scrypt$ln=99,r=8,p=1$AA$AA', 'x'), false);
  });

  it('the decoy verification always refuses', async () => {
    assert.equal(await verifyDecoyPassword('anything'), false);
  });
});
