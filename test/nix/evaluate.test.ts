import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { EVAL_TOP_LEVEL, evaluateJobs, type EvalJob, type EvaluateJobsOptions } from '../../activities/nix/evaluate';
import { parseDerivation, readDerivation } from '../../activities/nix/drv';
import { runNix } from '../../activities/nix/nix-env';
import { fetchGitSource } from '../../activities/nix/source';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { pidsWithCommandLine } from '../support/sshd';
import { procStat } from '../../lib/processes';

const fixtureDir = path.join(__dirname, '..', 'fixtures', 'jobset');

const fixtureJobs = ['a', 'b', 'broken', 'c', 'needsBroken', 'release', 'slow', 'tools.x', 'urgent', 'withProducts'];

interface Evaluation {
  jobs: Map<string, EvalJob>;
  errors: Map<string, string>;
  order: string[];
}

async function evaluate(opts: EvaluateJobsOptions): Promise<Evaluation> {
  const result: Evaluation = { jobs: new Map(), errors: new Map(), order: [] };
  for await (const item of evaluateJobs(opts)) {
    result.order.push(item.attr);
    if (item.kind === 'job') result.jobs.set(item.attr, item);
    else result.errors.set(item.attr, item.error);
  }
  return result;
}

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'ringmaster-eval-'));
}

const trivialDrv = (name: string, extra = '') =>
  `derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ${name} > $out" ]; ${extra} }`;

function checkFixtureJobs(evaluation: Evaluation) {
  assert.deepEqual([...evaluation.jobs.keys()].sort(), fixtureJobs);
  assert.deepEqual([...evaluation.errors.keys()], ['evalError']);
  assert.match(evaluation.errors.get('evalError')!, /evalError is broken on purpose/);
}

describe('evaluating the legacy fixture (release.nix)', () => {
  const nonce = `legacy-${randomBytes(6).toString('hex')}`;
  let evaluation: Evaluation;
  before(async () => {
    evaluation = await evaluate({
      sourceDir: fixtureDir,
      flakeMode: false,
      expression: 'release.nix',
      args: [{ name: 'greeting', kind: 'argstr', value: nonce }],
    });
  });

  it('yields every job by its dotted attribute name, descending into nested sets', () => {
    checkFixtureJobs(evaluation);
    assert.ok(evaluation.jobs.has('tools.x'));
    assert.ok(!evaluation.jobs.has('tools.recurseForDerivations'));
  });

  it('writes each job\'s derivation to the store, with its outputs and system', async () => {
    for (const job of evaluation.jobs.values()) {
      assert.match(job.drvPath, /^\/nix\/store\/[0-9a-z]{32}-.*\.drv$/);
      assert.ok((await stat(job.drvPath)).isFile(), `${job.drvPath} exists`);
      assert.match(job.outputs.out, /^\/nix\/store\//);
      const drv = await readDerivation(job.drvPath);
      assert.equal(drv.outputs.out, job.outputs.out);
      assert.equal(drv.env.greeting, nonce, 'the --argstr reached the expression');
      assert.equal(job.system, drv.system);
    }
  });

  it('an aggregate lists its constituents by job name', () => {
    const release = evaluation.jobs.get('release')!;
    assert.equal(release.isAggregate, true);
    assert.deepEqual([...release.constituents].sort(), ['a', 'c']);
    assert.equal(evaluation.jobs.get('a')!.isAggregate, false);
    assert.deepEqual(evaluation.jobs.get('a')!.constituents, []);
  });

  it('meta is flattened as Hydra does: priority, description, licence, maintainers, homepage', () => {
    const urgent = evaluation.jobs.get('urgent')!;
    assert.equal(urgent.meta.schedulingPriority, 200);
    assert.equal(urgent.meta.description, 'a job that goes first');
    assert.equal(urgent.meta.license, 'MIT');
    assert.equal(urgent.meta.maintainers, 'alice@example.org, bob@example.org');
    assert.equal(urgent.meta.homepage, 'https://example.org/urgent');
    assert.deepEqual(evaluation.jobs.get('a')!.meta, {});
  });

  it('a job whose evaluation throws is recorded as an error and the other jobs still evaluate', () => {
    assert.ok(evaluation.errors.has('evalError'));
    assert.ok(evaluation.jobs.size >= 10);
  });

  it('inputDrvs list the derivations a job depends on: c needs b, b needs a', () => {
    const { a, b, c, needsBroken, broken } = Object.fromEntries(evaluation.jobs) as Record<string, EvalJob>;
    assert.deepEqual(c.inputDrvs, [b.drvPath]);
    assert.deepEqual(b.inputDrvs, [a.drvPath]);
    assert.deepEqual(a.inputDrvs, []);
    assert.deepEqual(needsBroken.inputDrvs, [broken.drvPath]);
    assert.equal(a.isFod, false);
    assert.deepEqual(a.requiredSystemFeatures, []);
  });

  it('the system option sets builtins.currentSystem for the evaluation', async () => {
    const other = await evaluate({
      sourceDir: fixtureDir,
      flakeMode: false,
      expression: 'release.nix',
      args: [{ name: 'greeting', kind: 'argstr', value: nonce }],
      system: 'aarch64-linux',
    });
    checkFixtureJobs(other);
    for (const job of other.jobs.values()) assert.equal(job.system, 'aarch64-linux');
  });

  it('the default greeting is used when no argument is given, giving other store paths', async () => {
    const plain = await evaluate({ sourceDir: fixtureDir, flakeMode: false, expression: 'release.nix', args: [] });
    checkFixtureJobs(plain);
    assert.notEqual(plain.jobs.get('a')!.drvPath, evaluation.jobs.get('a')!.drvPath);
    assert.equal((await readDerivation(plain.jobs.get('a')!.drvPath)).env.greeting, 'hello');
  });
});

describe('evaluating the flake fixture (hydraJobs)', () => {
  let repo: GitFixtureRepo;
  let cacheDir: string;
  before(async () => {
    repo = await makeGitRepo(fixtureDir);
    cacheDir = await tempDir();
  });
  after(async () => {
    await rm(repo.dir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
  });

  it('a flake checked out from git evaluates its hydraJobs to the same job names', async () => {
    const nonce = `flake-${randomBytes(6).toString('hex')}`;
    await repo.commitChange('greeting', `${nonce}\n`);
    const source = await fetchGitSource({ url: repo.url, cacheDir });
    const evaluation = await evaluate({ sourceDir: source.path, flakeMode: true, expression: 'hydraJobs', args: [] });
    checkFixtureJobs(evaluation);
    const c = evaluation.jobs.get('c')!;
    assert.ok((await stat(c.drvPath)).isFile());
    assert.deepEqual(c.inputDrvs, [evaluation.jobs.get('b')!.drvPath]);
    assert.deepEqual([...evaluation.jobs.get('release')!.constituents].sort(), ['a', 'c']);
    assert.equal(evaluation.jobs.get('urgent')!.meta.schedulingPriority, 200);
    assert.equal((await readDerivation(c.drvPath)).env.greeting, nonce);
  });

  it('a flake without hydraJobs falls back to checks.<system>', async () => {
    const dir = await tempDir();
    try {
      await writeFile(path.join(dir, 'flake.nix'), `{ outputs = { self }: { checks.\${builtins.currentSystem} = { only = ${trivialDrv(`only-${randomBytes(4).toString('hex')}`)}; }; }; }`);
      const evaluation = await evaluate({ sourceDir: dir, flakeMode: true, expression: '', args: [] });
      assert.deepEqual([...evaluation.jobs.keys()], ['only']);
      assert.equal(evaluation.errors.size, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('evaluation failures', () => {
  let dir: string;
  before(async () => { dir = await tempDir(); });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('an error throw cannot catch (abort, a type error) is recorded for its job and the walk goes on after it', async () => {
    await writeFile(path.join(dir, 'uncatchable.nix'), `{ }: {
      first = ${trivialDrv('first')};
      aborts = abort "aborting on purpose";
      nested = { typeError = 1 + "x"; fine = ${trivialDrv('fine')}; };
      notAJob = "a string";
      nothing = null;
      zlast = ${trivialDrv('zlast')};
    }`);
    const evaluation = await evaluate({ sourceDir: dir, flakeMode: false, expression: 'uncatchable.nix', args: [] });
    assert.deepEqual([...evaluation.jobs.keys()].sort(), ['first', 'nested.fine', 'zlast']);
    assert.deepEqual([...evaluation.errors.keys()].sort(), ['aborts', 'nested.typeError', 'notAJob']);
    assert.match(evaluation.errors.get('aborts')!, /aborting on purpose/);
    assert.match(evaluation.errors.get('nested.typeError')!, /cannot add a string to an integer/);
  });

  it('jobs arrive as a stream: the first job is yielded while a later one is still being evaluated', async () => {
    const nonce = randomBytes(4).toString('hex');
    await writeFile(path.join(dir, 'streaming.nix'), `{ }: {
      aQuick = ${trivialDrv(`quick-${nonce}`)};
      bSlow = builtins.seq (builtins.foldl' (x: y: x + y) 0 (builtins.genList (x: x) 2000000)) (${trivialDrv(`slow-${nonce}`)});
    }`);
    const started = Date.now();
    const arrivals: Array<[string, number]> = [];
    for await (const item of evaluateJobs({ sourceDir: dir, flakeMode: false, expression: 'streaming.nix', args: [] })) {
      arrivals.push([item.attr, Date.now() - started]);
    }
    assert.deepEqual(arrivals.map(([attr]) => attr), ['aQuick', 'bSlow']);
    const [[, quickAt], [, slowAt]] = arrivals;
    assert.ok(slowAt - quickAt > 300, `aQuick came at ${quickAt} ms, bSlow at ${slowAt} ms`);
  });

  it('the evaluator runs at the nice value it is given (its session\'s autogroup), and at this process\'s without one', async () => {
    const nonce = randomBytes(4).toString('hex');
    const fifo = path.join(dir, `gate-${nonce}`);
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
    // bWaits reads the FIFO: the walker is held there, alive, once aFirst has arrived.
    await writeFile(path.join(dir, `niced-${nonce}.nix`), `{ }: {
      aFirst = ${trivialDrv(`first-${nonce}`)};
      bWaits = builtins.seq (builtins.readFile ${fifo}) (${trivialDrv(`waits-${nonce}`)});
    }`);
    // The walker of this evaluation: its cmdline names the expression, and this process is its parent.
    const walkerOf = (): number => {
      const pids = pidsWithCommandLine(`niced-${nonce}.nix`).filter((pid) => procStat(pid)?.(4) === String(process.pid));
      assert.equal(pids.length, 1, `one walker of this evaluation, a child of this process: ${pids.join(', ')}`);
      return pids[0];
    };
    const niceOf = (pid: number) => ({
      own: os.getPriority(pid),
      group: fs.existsSync(`/proc/${pid}/autogroup`) ? Number(/nice (-?\d+)/.exec(fs.readFileSync(`/proc/${pid}/autogroup`, 'utf8'))![1]) : undefined,
    });
    const mine = os.getPriority();
    for (const nice of [-7, undefined]) {
      const refused: string[] = [];
      const seen: string[] = [];
      let during: { own: number; group?: number } | undefined;
      for await (const item of evaluateJobs({ sourceDir: dir, flakeMode: false, expression: `niced-${nonce}.nix`, args: [], nice, onNiceRefused: (r) => refused.push(r) })) {
        seen.push(item.attr);
        if (item.attr === 'aFirst') {
          during = niceOf(walkerOf());
          fs.writeFileSync(fifo, 'go');
        }
      }
      assert.deepEqual(seen, ['aFirst', 'bWaits']);
      assert.deepEqual(refused, []);
      const expected = nice ?? mine;
      assert.equal(during!.own, expected, `the walker's own nice with nice=${nice}`);
      if (during!.group !== undefined) assert.equal(during!.group, nice ?? 0, `the walker's autogroup with nice=${nice}`);
    }
  });

  it('a nice value this process may not give (no CAP_SYS_NICE) is reported, and the evaluation goes on at the usual priority', async () => {
    const nonce = randomBytes(4).toString('hex');
    await writeFile(path.join(dir, `unniced-${nonce}.nix`), `{ }: { only = ${trivialDrv(`only-${nonce}`)}; }`);
    // Root without CAP_SYS_NICE in its bounding and inheritable sets: a negative nice value is refused.
    const run = spawnSync('setpriv', ['--bounding-set', '-sys_nice', '--inh-caps', '-sys_nice', process.execPath, '--import', 'tsx',
      path.join(__dirname, '..', 'support', 'evaluate-without-cap-sys-nice.ts'), dir, `unniced-${nonce}.nix`, '-5'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.status, 0, run.stderr);
    const { jobs, refused } = JSON.parse(run.stdout) as { jobs: string[]; refused: string[] };
    assert.deepEqual(jobs, ['job:only']);
    assert.equal(refused.length, 1, `one walker, one refusal: ${JSON.stringify(refused)}`);
    assert.match(refused[0], /EPERM|EACCES/);
  });

  it('an expression that does not parse yields one error for the whole evaluation', async () => {
    await writeFile(path.join(dir, 'syntax.nix'), '{ a = ; }');
    const evaluation = await evaluate({ sourceDir: dir, flakeMode: false, expression: 'syntax.nix', args: [] });
    assert.equal(evaluation.jobs.size, 0);
    assert.deepEqual([...evaluation.errors.keys()], [EVAL_TOP_LEVEL]);
    assert.match(evaluation.errors.get(EVAL_TOP_LEVEL)!, /syntax error/);
  });

  it('a missing expression file yields one error for the whole evaluation, naming the file', async () => {
    const evaluation = await evaluate({ sourceDir: dir, flakeMode: false, expression: 'missing.nix', args: [] });
    assert.deepEqual([...evaluation.errors.keys()], [EVAL_TOP_LEVEL]);
    assert.match(evaluation.errors.get(EVAL_TOP_LEVEL)!, /missing\.nix/);
  });

  it('an aggregate naming a job that does not exist is an error; constituents may be given by name', async () => {
    await writeFile(path.join(dir, 'aggregates.nix'), `{ }: rec {
      one = ${trivialDrv('one')};
      byName = ${trivialDrv('by-name', '_hydraAggregate = true; constituents = [ "one" ];')};
      dangling = ${trivialDrv('dangling', '_hydraAggregate = true; constituents = [ "nope" ];')};
    }`);
    const evaluation = await evaluate({ sourceDir: dir, flakeMode: false, expression: 'aggregates.nix', args: [] });
    assert.deepEqual(evaluation.jobs.get('byName')!.constituents, ['one']);
    assert.match(evaluation.errors.get('dangling')!, /nope/);
  });

  it('aborting the signal stops the evaluation with an error, yielding nothing after the abort', async () => {
    const jobs = Array.from({ length: 2000 }, (_, i) => `j${i} = ${trivialDrv(`abortable-${i}`)};`).join('\n');
    await writeFile(path.join(dir, 'many.nix'), `{ }: { ${jobs} }`);
    const controller = new AbortController();
    let seen = 0;
    await assert.rejects(async () => {
      for await (const item of evaluateJobs({ sourceDir: dir, flakeMode: false, expression: 'many.nix', args: [], signal: controller.signal })) {
        void item;
        if (++seen === 5) controller.abort();
      }
    }, /aborted/);
    // Whether or not Nix has already written every job, nothing is yielded after the abort.
    assert.equal(seen, 5);
  });
});

describe('readDerivation', () => {
  it('reads a fixed-output derivation with required system features and escaped strings, as nix show-derivation does', async () => {
    const dir = await tempDir();
    try {
      const nonce = randomBytes(4).toString('hex');
      await writeFile(path.join(dir, 'fod.nix'), String.raw`derivation {
        name = "fod-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh";
        args = [ "-c" "echo 'quote \" backslash \\ tab\t newline\n'" ];
        note = "quote \" backslash \\ tab\t newline\n return\r dollar \${x}";
        requiredSystemFeatures = [ "kvm" "big-parallel" ];
        outputHashMode = "flat"; outputHashAlgo = "sha256";
        outputHash = "0000000000000000000000000000000000000000000000000000";
      }`);
      const instantiated = await runNix('nix-instantiate', [path.join(dir, 'fod.nix')]);
      assert.equal(instantiated.code, 0, instantiated.stderr);
      const drvPath = instantiated.stdout.trim();
      const drv = await readDerivation(drvPath);
      assert.equal(drv.isFod, true);
      assert.deepEqual(drv.requiredSystemFeatures, ['kvm', 'big-parallel']);
      assert.deepEqual(Object.keys(drv.outputs), ['out']);
      assert.equal(drv.env.note, 'quote " backslash \\ tab\t newline\n return\r dollar ${x}');

      const shown = await runNix('nix', ['--extra-experimental-features', 'nix-command', 'show-derivation', drvPath]);
      assert.equal(shown.code, 0, shown.stderr);
      type Shown = { outputs: Record<string, { path: string }>; inputDrvs: Record<string, string[]>; system: string; args: string[]; env: Record<string, string> };
      const reference = (JSON.parse(shown.stdout) as Record<string, Shown>)[drvPath];
      const parsed = parseDerivation(await readFile(drvPath, 'utf8'));
      assert.deepEqual(parsed.env, reference.env);
      assert.deepEqual(parsed.args, reference.args);
      assert.equal(parsed.system, reference.system);
      assert.deepEqual(drv.outputs, Object.fromEntries(Object.entries(reference.outputs).map(([name, o]) => [name, o.path])));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
