/**
 * Store paths in an order where each comes after those of its references that are among them (a
 * path's reference to itself aside): the order in which `nix-store --import` needs them, and in which
 * the binary cache publishes them. References of a path that are not among `paths` are ignored.
 */
export function dependenciesFirst(paths: string[], infos: Map<string, { references: string[] }>): string[] {
  const wanted = new Set(paths);
  const ordered: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (root: string) => {
    // Iterative depth-first walk: closures can be deep.
    const stack: Array<{ path: string; refs: string[] }> = [{ path: root, refs: [...(infos.get(root)?.references ?? [])] }];
    state.set(root, 'visiting');
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const next = top.refs.pop();
      if (next === undefined) {
        stack.pop();
        state.set(top.path, 'done');
        ordered.push(top.path);
      } else if (wanted.has(next) && !state.has(next)) {
        state.set(next, 'visiting');
        stack.push({ path: next, refs: [...(infos.get(next)?.references ?? [])] });
      }
    }
  };
  for (const p of paths) if (!state.has(p)) visit(p);
  return ordered;
}
