import type { ChannelJob } from './queries/channels';

/** Where an evaluation came from, for the header comment of its channel expression. */
export interface ChannelSource {
  project: string;
  jobset: string;
  evaluationId: string;
  gitRevision: string | null;
}

/** A Nix string literal: every character that could end or interpolate it is escaped. */
export function nixString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$\{/g, '\\${').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}"`;
}

/** The derivation name of a store path: /nix/store/<hash>-hello-1.0.drv gives hello-1.0. */
export function derivationName(drvPath: string): string {
  const base = drvPath.slice(drvPath.lastIndexOf('/') + 1).replace(/\.drv$/, '');
  return /^[0-9a-z]{32}-/.test(base) ? base.slice(33) : base;
}

const PRELUDE = `{ ... }:

let
  # A job that Ringmaster built, as a derivation-like value with nothing left to instantiate:
  # \`builtins.storePath\` fetches an output (from a substituter, e.g. Ringmaster's binary cache)
  # when it is used, so nix-env -i and nix-store -r work; nix-env -qa lists it.
  builtOutput = { name, system, outputs, meta }:
    let
      outputNames = builtins.attrNames outputs;
      common = byOutput // {
        type = "derivation";
        inherit name system meta;
        outputs = outputNames;
        all = builtins.attrValues byOutput;
      };
      byOutput = builtins.mapAttrs (outputName: path: common // {
        inherit outputName;
        outPath = builtins.storePath path;
      }) outputs;
    in byOutput.\${if outputs ? out then "out" else builtins.head outputNames};
in
`;

type Tree = Map<string, Tree | ChannelJob>;

function jobValue(job: ChannelJob, indent: string): string {
  const meta: string[] = [];
  if (job.meta_description) meta.push(`description = ${nixString(job.meta_description)};`);
  if (job.meta_license) meta.push(`license = ${nixString(job.meta_license)};`);
  if (job.meta_homepage) meta.push(`homepage = ${nixString(job.meta_homepage)};`);
  const outputs = Object.keys(job.outputs)
    .sort()
    .map((name) => `${nixString(name)} = ${nixString(job.outputs[name])};`);
  const inner = `${indent}  `;
  return [
    'builtOutput {',
    `${inner}name = ${nixString(derivationName(job.drv_path))};`,
    `${inner}system = ${nixString(job.system)};`,
    `${inner}outputs = { ${outputs.join(' ')} };`,
    `${inner}meta = { ${meta.join(' ')}${meta.length ? ' ' : ''}};`,
    `${indent}}`,
  ].join('\n');
}

function render(tree: Tree, indent: string, recurse: boolean): string {
  const inner = `${indent}  `;
  const lines = recurse ? [`${inner}recurseForDerivations = true;`] : [];
  for (const key of [...tree.keys()].sort()) {
    const node = tree.get(key)!;
    const value = node instanceof Map ? render(node, inner, true) : jobValue(node, inner);
    lines.push(`${inner}${nixString(key)} = ${value};`);
  }
  return `{\n${lines.join('\n')}\n${indent}}`;
}

/**
 * Arranges jobs by their dotted names: `tests.simple` becomes `tests = { recurseForDerivations = true;
 * simple = …; }`, as Hydra's channels do, so nix-env -qa finds nested jobs. A job whose name is a
 * prefix of another's (`a` and `a.b`) keeps the longer one flat, as the quoted attribute `"a.b"`.
 */
export function jobTree(jobs: ChannelJob[]): Tree {
  const names = new Set(jobs.map((j) => j.job_name));
  const hasJobPrefix = (name: string) => {
    const parts = name.split('.');
    for (let i = 1; i < parts.length; i++) if (names.has(parts.slice(0, i).join('.'))) return true;
    return false;
  };
  const root: Tree = new Map();
  for (const job of jobs) {
    const parts = job.job_name.split('.');
    if (parts.length === 1 || parts.some((p) => p === '') || hasJobPrefix(job.job_name)) {
      root.set(job.job_name, job);
      continue;
    }
    let node = root;
    for (const part of parts.slice(0, -1)) {
      let next = node.get(part);
      if (!(next instanceof Map)) {
        next = new Map();
        node.set(part, next);
      }
      node = next;
    }
    node.set(parts[parts.length - 1], job);
  }
  return root;
}

/**
 * The channel's default.nix: a function (called with `{}` by nix-env and by `import <channel> {}`) whose
 * attributes are the evaluation's succeeded jobs, each with `outPath` at its built output. Its text
 * depends only on the evaluation, so the same evaluation always gives the same bytes.
 */
export function channelExpression(source: ChannelSource, jobs: ChannelJob[]): string {
  const header = [
    `# Ringmaster channel expression for ${source.project}:${source.jobset}, evaluation ${source.evaluationId}`,
    ...(source.gitRevision ? [`# git revision ${source.gitRevision}`] : []),
    '# Every attribute is a job of that evaluation whose build succeeded.',
  ]
    .map((line) => line.replace(/[\r\n]/g, ' '))
    .join('\n');
  const usable = jobs.filter((j) => Object.keys(j.outputs).length > 0 && Object.values(j.outputs).every((p) => p.startsWith('/')));
  return `${header}\n${PRELUDE}${render(jobTree(usable), '', false)}\n`;
}
