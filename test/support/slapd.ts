import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort, spawnLogged, stopProcess, waitForPort } from '../../lib/processes';

const execFileAsync = promisify(execFile);

const SLAPD = '/usr/sbin/slapd';
const SLAPADD = '/usr/sbin/slapadd';
const SCHEMA_DIR = '/etc/ldap/schema';

export interface SlapdUser {
  uid: string;
  password: string;
  cn?: string;
  mail?: string;
}

export interface SlapdGroup {
  cn: string;
  /** uids of members (groupOfNames needs at least one). */
  members: string[];
}

/**
 * A throwaway OpenLDAP server: its own slapd.conf (mdb backend), data directory and pidfile under a
 * temp dir, seeded with slapadd, listening on ldap://127.0.0.1:<free port>/, run as the current
 * user (root here) in the foreground (-d 0) and stopped by its PID.
 */
export interface Slapd {
  url: string;
  /** With `tls: true`: an ldaps:// listener, and the PEM of the test CA that signed slapd's certificate. */
  ldapsUrl?: string;
  caFile?: string;
  suffix: string;
  peopleDn: string;
  groupsDn: string;
  rootDn: string;
  rootPassword: string;
  pid: number;
  userDn(uid: string): string;
  groupDn(cn: string): string;
  /** Stops slapd (SIGTERM by PID); the data stays, so start() serves the same directory again. */
  pause(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  log(): string;
}

export const SLAPD_SUFFIX = 'dc=ringmaster,dc=test';

function slapdConf(dir: string, suffix: string, rootDn: string, rootPassword: string, tls: boolean): string {
  return [
    ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include ${SCHEMA_DIR}/${s}.schema`),
    ...(tls ? [`TLSCACertificateFile ${dir}/ca.pem`, `TLSCertificateFile ${dir}/server.pem`, `TLSCertificateKeyFile ${dir}/server.key`] : []),
    `pidfile ${dir}/slapd.pid`,
    `argsfile ${dir}/slapd.args`,
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    'database mdb',
    'maxsize 16777216',
    `suffix "${suffix}"`,
    `rootdn "${rootDn}"`,
    `rootpw ${rootPassword}`,
    `directory ${dir}/db`,
    // Passwords only for binding; everything else readable (group searches after a user bind).
    'access to attrs=userPassword by anonymous auth by self read by * none',
    'access to * by * read',
    '',
  ].join('\n');
}

function seedLdif(suffix: string, users: SlapdUser[], groups: SlapdGroup[]): string {
  const dc = /^dc=([^,]+)/.exec(suffix)![1];
  const entries = [
    [`dn: ${suffix}`, 'objectClass: dcObject', 'objectClass: organization', `o: ${dc}`, `dc: ${dc}`],
    [`dn: ou=people,${suffix}`, 'objectClass: organizationalUnit', 'ou: people'],
    [`dn: ou=groups,${suffix}`, 'objectClass: organizationalUnit', 'ou: groups'],
    ...users.map((u) => [
      `dn: uid=${u.uid},ou=people,${suffix}`,
      'objectClass: inetOrgPerson',
      `uid: ${u.uid}`,
      `cn: ${u.cn ?? u.uid}`,
      `sn: ${u.uid}`,
      ...(u.mail ? [`mail: ${u.mail}`] : []),
      `userPassword: ${u.password}`,
    ]),
    ...groups.map((g) => [
      `dn: cn=${g.cn},ou=groups,${suffix}`,
      'objectClass: groupOfNames',
      `cn: ${g.cn}`,
      ...g.members.map((m) => `member: uid=${m},ou=people,${suffix}`),
    ]),
  ];
  return `${entries.map((e) => e.join('\n')).join('\n\n')}\n`;
}

/** A throwaway CA and a server certificate for 127.0.0.1 and localhost, made with the openssl CLI. */
async function makeCertificates(dir: string): Promise<void> {
  const openssl = (args: string[]) => execFileAsync('openssl', args, { cwd: dir });
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Ringmaster test CA']);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext']);
}

export async function startSlapd(seed: { users: SlapdUser[]; groups: SlapdGroup[]; tls?: boolean }): Promise<Slapd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-slapd-'));
  const suffix = SLAPD_SUFFIX;
  const rootDn = `cn=admin,${suffix}`;
  const rootPassword = 'slapd-root-password';
  const conf = path.join(dir, 'slapd.conf');
  const logFile = path.join(dir, 'slapd.log');
  fs.mkdirSync(path.join(dir, 'db'));
  if (seed.tls) await makeCertificates(dir);
  fs.writeFileSync(conf, slapdConf(dir, suffix, rootDn, rootPassword, seed.tls === true));
  fs.writeFileSync(path.join(dir, 'seed.ldif'), seedLdif(suffix, seed.users, seed.groups));
  await execFileAsync(SLAPADD, ['-f', conf, '-l', path.join(dir, 'seed.ldif')]);

  const port = await freePort();
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsPort = seed.tls ? await freePort() : undefined;
  const ldapsUrl = ldapsPort ? `ldaps://127.0.0.1:${ldapsPort}` : undefined;
  let child: ChildProcess | undefined;
  const start = async () => {
    const listeners = [`${url}/`, ...(ldapsUrl ? [`${ldapsUrl}/`] : [])].join(' ');
    child = spawnLogged(SLAPD, ['-h', listeners, '-f', conf, '-d', '0'], logFile);
    try {
      await waitForPort('127.0.0.1', port, 30_000, child);
      if (ldapsPort) await waitForPort('127.0.0.1', ldapsPort, 30_000, child);
    } catch (err) {
      await stopProcess(child, 2_000);
      throw new Error(`slapd did not start: ${(err as Error).message}\n${fs.readFileSync(logFile, 'utf8')}`);
    }
  };
  const pause = async () => {
    if (child) await stopProcess(child, 5_000);
  };
  await start();

  return {
    url,
    ldapsUrl,
    caFile: seed.tls ? path.join(dir, 'ca.pem') : undefined,
    suffix,
    peopleDn: `ou=people,${suffix}`,
    groupsDn: `ou=groups,${suffix}`,
    rootDn,
    rootPassword,
    get pid() {
      return child?.pid ?? -1;
    },
    userDn: (uid) => `uid=${uid},ou=people,${suffix}`,
    groupDn: (cn) => `cn=${cn},ou=groups,${suffix}`,
    pause,
    start,
    async stop() {
      await pause();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
  };
}
