/**
 * The durability tests' batch (issue 6): 50 independent jobs that each sleep half a second, every tenth
 * failing, and the status each one must end with.
 */

export const BATCH_SIZE = 50;

export const BATCH_RELEASE_NIX = `{ nonce ? "x", system ? builtins.currentSystem }:
let
  job = i: derivation {
    name = "b\${toString i}";
    inherit system nonce;
    PATH = "/bin:/usr/bin";
    builder = "/bin/sh";
    args = [ "-c" (if i - (i / 10) * 10 == 9 then "sleep 0.5; exit 1" else "sleep 0.5; echo \${toString i} $nonce > $out") ];
  };
in
builtins.listToAttrs (builtins.genList (i: { name = "b\${toString i}"; value = job i; }) ${BATCH_SIZE})
`;

/** Job name → the status its build must end with. */
export const BATCH_EXPECTED: Record<string, string> = Object.fromEntries(Array.from({ length: BATCH_SIZE }, (_, i) => [`b${i}`, i % 10 === 9 ? 'failed' : 'succeeded']));
