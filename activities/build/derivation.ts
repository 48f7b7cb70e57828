import fs from 'node:fs/promises';

/** The parts of a store derivation (.drv) that building needs. */
export interface Derivation {
  /** Output name → store path ("" for content-addressed outputs, which this builder does not support). */
  outputs: Record<string, string>;
  /** Input derivation path → the output names used. */
  inputDrvs: Record<string, string[]>;
  inputSrcs: string[];
  system: string;
  builder: string;
  args: string[];
  env: Record<string, string>;
}

type Term = string | Term[] | { ctor: string; args: Term[] };

/** Parses the ATerm text of a .drv: `Derive([outputs],[inputDrvs],[inputSrcs],"system","builder",[args],[env])`. */
export function parseDerivation(text: string): Derivation {
  let pos = 0;
  const fail = (what: string): never => {
    throw new Error(`malformed derivation: ${what} at offset ${pos}`);
  };
  const expect = (ch: string) => {
    if (text[pos] !== ch) fail(`expected '${ch}'`);
    pos++;
  };
  const parseString = (): string => {
    expect('"');
    let out = '';
    for (;;) {
      const ch = text[pos++];
      if (ch === undefined) fail('unterminated string');
      if (ch === '"') return out;
      if (ch === '\\') {
        const esc = text[pos++];
        out += esc === 'n' ? '\n' : esc === 't' ? '\t' : esc === 'r' ? '\r' : esc;
      } else out += ch;
    }
  };
  const parseSeq = (close: string): Term[] => {
    const items: Term[] = [];
    if (text[pos] === close) {
      pos++;
      return items;
    }
    for (;;) {
      items.push(parseTerm());
      if (text[pos] === ',') pos++;
      else if (text[pos] === close) {
        pos++;
        return items;
      } else fail(`expected ',' or '${close}'`);
    }
  };
  const parseTerm = (): Term => {
    const ch = text[pos];
    if (ch === '"') return parseString();
    if (ch === '[') {
      pos++;
      return parseSeq(']');
    }
    if (ch === '(') {
      pos++;
      return parseSeq(')');
    }
    const m = /^[A-Za-z]+/.exec(text.slice(pos, pos + 32));
    if (!m) return fail('unexpected character');
    pos += m[0].length;
    expect('(');
    return { ctor: m[0], args: parseSeq(')') };
  };

  const root = parseTerm();
  if (typeof root !== 'object' || Array.isArray(root) || root.ctor !== 'Derive' || root.args.length !== 7) {
    return fail('not a Derive(...) term');
  }
  const [outputs, inputDrvs, inputSrcs, system, builder, args, env] = root.args;
  const list = (t: Term): Term[] => (Array.isArray(t) ? t : fail('expected a list'));
  const str = (t: Term): string => (typeof t === 'string' ? t : fail('expected a string'));
  const drv: Derivation = { outputs: {}, inputDrvs: {}, inputSrcs: [], system: str(system), builder: str(builder), args: list(args).map(str), env: {} };
  for (const o of list(outputs)) {
    const [name, path] = list(o);
    drv.outputs[str(name)] = str(path);
  }
  for (const i of list(inputDrvs)) {
    const [path, names] = list(i);
    drv.inputDrvs[str(path)] = list(names).map(str);
  }
  drv.inputSrcs = list(inputSrcs).map(str);
  for (const e of list(env)) {
    const [k, v] = list(e);
    drv.env[str(k)] = str(v);
  }
  return drv;
}

/** Reads and parses a .drv file from the local store. */
export async function readDerivation(drvPath: string): Promise<Derivation> {
  return parseDerivation(await fs.readFile(drvPath, 'utf8'));
}
