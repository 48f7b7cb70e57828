import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** What Ringmaster needs to know about a store derivation (`/nix/store/…-name.drv`). */
export interface DerivationInfo {
  /** Output name → output store path (empty for content-addressed outputs whose path is not known yet). */
  outputs: Record<string, string>;
  /** The .drv paths this derivation depends on directly. */
  inputDrvs: string[];
  /** Each input derivation → the names of its outputs this derivation uses. */
  inputDrvOutputs: Record<string, string[]>;
  inputSrcs: string[];
  builder: string;
  args: string[];
  system: string;
  requiredSystemFeatures: string[];
  /** A fixed-output derivation (e.g. a fetcher): its output hash is declared up front. */
  isFod: boolean;
  env: Record<string, string>;
}

/** The parsed ATerm of a derivation, field by field. */
export interface ParsedDerivation {
  outputs: Array<{ name: string; path: string; hashAlgo: string; hash: string }>;
  inputDrvs: Array<{ path: string; outputs: string[] }>;
  inputSrcs: string[];
  system: string;
  builder: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * Why a derivation whose `.drv` read failed with ENOENT cannot be built (garbage-collected since the
 * evaluation, as happens to old builds), naming it; undefined for any other error.
 */
export function missingDerivationMessage(err: unknown, drvPath: string): string | undefined {
  const e = err as NodeJS.ErrnoException;
  if (e?.code !== 'ENOENT') return undefined;
  return `derivation ${e.path ?? drvPath} is not in the Nix store (garbage-collected since the evaluation?): evaluate the jobset again`;
}

/**
 * Reads and parses a .drv file from the store. The one `.drv` parser: planning, evaluation and
 * realising steps (locally or on a builder) all read derivations through it.
 */
export async function readDerivation(drvPath: string): Promise<DerivationInfo> {
  const text = await readFile(drvPath, 'utf8');
  let parsed: ParsedDerivation;
  try {
    parsed = parseDerivation(text);
  } catch (err) {
    throw new Error(`cannot parse derivation ${drvPath}: ${(err as Error).message}`);
  }
  return derivationInfo(parsed);
}

/**
 * readDerivation without the thread pool: for a loop that reads one small .drv after another (the
 * evaluator's output), where four thread-pool hops per file cost more than the read itself.
 */
export function readDerivationSync(drvPath: string): DerivationInfo {
  const text = readFileSync(drvPath, 'utf8');
  let parsed: ParsedDerivation;
  try {
    parsed = parseDerivation(text);
  } catch (err) {
    throw new Error(`cannot parse derivation ${drvPath}: ${(err as Error).message}`);
  }
  return derivationInfo(parsed);
}

export function derivationInfo(parsed: ParsedDerivation): DerivationInfo {
  const outputs: Record<string, string> = {};
  for (const output of parsed.outputs) outputs[output.name] = output.path;
  const isFod = parsed.outputs.length === 1 && parsed.outputs[0].name === 'out' && parsed.outputs[0].hash !== '';
  return {
    outputs,
    inputDrvs: parsed.inputDrvs.map((input) => input.path),
    inputDrvOutputs: Object.fromEntries(parsed.inputDrvs.map((input) => [input.path, input.outputs])),
    inputSrcs: parsed.inputSrcs,
    builder: parsed.builder,
    args: parsed.args,
    system: parsed.system,
    requiredSystemFeatures: requiredSystemFeatures(parsed.env),
    isFod,
    env: parsed.env,
  };
}

function requiredSystemFeatures(env: Record<string, string>): string[] {
  // With __structuredAttrs the attributes live in one JSON document.
  if (env.__json !== undefined) {
    try {
      const attrs = JSON.parse(env.__json) as { requiredSystemFeatures?: unknown };
      const features = attrs.requiredSystemFeatures;
      if (Array.isArray(features)) return features.filter((f): f is string => typeof f === 'string');
      if (typeof features === 'string') return splitWords(features);
    } catch { /* fall through to the plain attribute */ }
  }
  return splitWords(env.requiredSystemFeatures ?? '');
}

function splitWords(value: string): string[] {
  return value.split(/\s+/).filter((word) => word !== '');
}

/** Parses the ATerm text of a .drv file: `Derive([outputs],[inputDrvs],[inputSrcs],system,builder,[args],[env])`. */
export function parseDerivation(text: string): ParsedDerivation {
  let pos = 0;
  const fail = (what: string): never => {
    throw new Error(`malformed derivation: expected ${what} at offset ${pos}`);
  };
  const expect = (literal: string) => {
    if (!text.startsWith(literal, pos)) fail(JSON.stringify(literal));
    pos += literal.length;
  };
  const string = (): string => {
    if (text[pos] !== '"') fail('a string');
    pos++;
    let out = '';
    let start = pos;
    for (;;) {
      const ch = text[pos];
      if (ch === undefined) fail('the end of a string');
      if (ch === '"') {
        out += text.slice(start, pos);
        pos++;
        return out;
      }
      if (ch === '\\') {
        out += text.slice(start, pos);
        const next = text[pos + 1];
        out += next === 'n' ? '\n' : next === 'r' ? '\r' : next === 't' ? '\t' : next;
        pos += 2;
        start = pos;
        continue;
      }
      pos++;
    }
  };
  const list = <T>(item: () => T): T[] => {
    expect('[');
    const items: T[] = [];
    if (text[pos] === ']') {
      pos++;
      return items;
    }
    for (;;) {
      items.push(item());
      if (text[pos] === ',') { pos++; continue; }
      expect(']');
      return items;
    }
  };
  const tuple = <T>(body: () => T): T => {
    expect('(');
    const value = body();
    expect(')');
    return value;
  };

  expect('Derive(');
  const outputs = list(() => tuple(() => {
    const name = string(); expect(',');
    const path = string(); expect(',');
    const hashAlgo = string(); expect(',');
    const hash = string();
    return { name, path, hashAlgo, hash };
  }));
  expect(',');
  const inputDrvs = list(() => tuple(() => {
    const path = string(); expect(',');
    const outs = list(string);
    return { path, outputs: outs };
  }));
  expect(',');
  const inputSrcs = list(string);
  expect(',');
  const system = string();
  expect(',');
  const builder = string();
  expect(',');
  const args = list(string);
  expect(',');
  const envPairs = list(() => tuple(() => {
    const key = string(); expect(',');
    return [key, string()] as const;
  }));
  expect(')');
  const env: Record<string, string> = Object.create(null);
  for (const [key, value] of envPairs) env[key] = value;
  return { outputs, inputDrvs, inputSrcs, system, builder, args, env: { ...env } };
}
