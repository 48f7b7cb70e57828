# A first Ringmaster jobset: three tiny jobs, no nixpkgs needed (every builder is /bin/sh).
{ greeting ? "hello" }:
let
  job = name: script: attrs: derivation ({
    inherit name greeting;
    PATH = "/bin:/usr/bin"; # mkdir and friends come from the host (no nixpkgs here)
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
  } // attrs);
in rec {
  hello = job "hello" ''echo "$greeting, world" > $out'' { };
  shout = job "shout" ''read line < $hello; echo "$line!" > $out'' { inherit hello; };
  report = job "report" ''
    mkdir -p $out/nix-support
    echo "$greeting" > $out/report.txt
    echo "file doc $out/report.txt" > $out/nix-support/hydra-build-products
  '' { };
}
