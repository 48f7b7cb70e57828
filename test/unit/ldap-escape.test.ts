import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { escapeDnValue, escapeFilterValue, fillTemplate, normalizeDn } from '../../lib/ldap-escape';

describe('LDAP escaping of user input', () => {
  it('a filter value escapes the RFC 4515 specials, so an injection stays one literal value', () => {
    assert.equal(escapeFilterValue('*)(uid=*'), '\\2a\\29\\28uid=\\2a');
    assert.equal(escapeFilterValue('Parens (R Us)'), 'Parens \\28R Us\\29');
    assert.equal(escapeFilterValue('C:\\MyFile'), 'C:\\5cMyFile');
    assert.equal(escapeFilterValue('a\0b'), 'a\\00b');
    assert.equal(escapeFilterValue('alice'), 'alice');
  });

  it('a DN value escapes the RFC 4514 specials and leading/trailing space and #', () => {
    assert.equal(escapeDnValue('Sue, Grabbit and Runn'), 'Sue\\, Grabbit and Runn');
    assert.equal(escapeDnValue('a+b=c;d<e>f"g\\h'), 'a\\+b\\=c\\;d\\<e\\>f\\"g\\\\h');
    assert.equal(escapeDnValue('#admin'), '\\#admin');
    assert.equal(escapeDnValue(' bob '), '\\ bob\\ ');
    assert.equal(escapeDnValue('*)(uid=*'), '*)(uid\\=*');
    assert.equal(escapeDnValue('alice'), 'alice');
  });

  it('a template gets only the named placeholders filled, once each, with $ patterns taken literally', () => {
    assert.equal(fillTemplate('uid={username},ou=people', { username: '$&x' }), 'uid=$&x,ou=people');
    assert.equal(fillTemplate('(|(member={dn})(memberUid={username})(x={other}))', { dn: 'D', username: 'U' }), '(|(member=D)(memberUid=U)(x={other}))');
  });

  it('DNs compare without case and without spaces around separators', () => {
    assert.equal(normalizeDn('CN=Admins, OU=Groups,dc=Example'), normalizeDn('cn=admins,ou=groups,DC=example'));
  });
});
