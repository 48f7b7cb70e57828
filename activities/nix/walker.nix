# Ringmaster's job walker, run by `nix-instantiate --eval --strict --json --read-write-mode` (see evaluate.ts).
#
# It walks a jobset the way Hydra's hydra-eval-jobs does: functions are called with the evaluation's
# arguments at every level, derivations are jobs, every other attribute set is descended (names with
# dots are refused), null is skipped. Each job is reported on stderr as soon as it is evaluated, through
# builtins.trace, so the caller reads the jobs as a stream:
#
#   trace: @ringmaster:B:<path>     about to evaluate the node at <path> (dotted; "" is the top level)
#   trace: @ringmaster:J:<json>     a job
#   trace: @ringmaster:E:<json>     a node that failed with a catchable error (throw/assert)
#
# builtins.tryEval catches only `throw` and `assert`. Any other error (abort, a type error, a missing
# attribute, infinite recursion) stops the whole process; the last B line then names the culprit and the
# caller starts the walker again with `resumeAfter` set to it, so the walk carries on after it.
#
# The result printed on stdout is only the number of jobs, so memory does not grow with the jobset.
{ ringmasterWalker, ... }@allArgs:
let
  cfg = builtins.fromJSON ringmasterWalker;
  userArgs = builtins.removeAttrs allArgs [ "ringmasterWalker" ];

  marker = kind: msg: value: builtins.trace "@ringmaster:${kind}:${msg}" value;
  pathName = path: builtins.concatStringsSep "." path;

  autoCall = f:
    if builtins.isFunction f then
      let formals = builtins.functionArgs f;
      in if formals == { } then f userArgs else f (builtins.intersectAttrs formals userArgs)
    else f;

  isDerivation = v: builtins.isAttrs v && (v.type or null) == "derivation";

  # Meta values the way Hydra flattens them: a string, an attribute set's chosen field, or a list of those.
  metaStrings = fields: v:
    if builtins.isString v then [ v ]
    else if builtins.isList v then builtins.concatMap (metaStrings fields) v
    else if builtins.isAttrs v then
      let present = builtins.filter (f: v ? ${f} && builtins.isString v.${f}) fields;
      in if present == [ ] then [ ] else [ v.${builtins.head present} ]
    else [ ];
  joinMeta = fields: v: builtins.concatStringsSep ", " (metaStrings fields v);

  jobMeta = drv:
    let
      meta = if builtins.isAttrs (drv.meta or null) then drv.meta else { };
      str = name: if meta ? ${name} && builtins.isString meta.${name} then { ${name} = meta.${name}; } else { };
      int = name: if meta ? ${name} && builtins.isInt meta.${name} then { ${name} = meta.${name}; } else { };
    in
    str "description" // str "homepage"
    // (if meta ? license then { license = joinMeta [ "spdxId" "shortName" "fullName" ] meta.license; } else { })
    // (if meta ? maintainers then { maintainers = joinMeta [ "email" "name" "github" ] meta.maintainers; } else { })
    // int "schedulingPriority" // int "timeout" // int "maxSilent";

  constituentRef = c:
    if isDerivation c then { drvPath = c.drvPath; }
    else if builtins.isString c then { name = c; }
    else throw "an aggregate's constituents must be derivations or job names, not ${builtins.typeOf c}";

  jobInfo = path: drv:
    let
      isAggregate = (drv._hydraAggregate or false) == true;
      outputNames = drv.outputs or [ "out" ];
    in
    {
      attr = pathName path;
      drvPath = drv.drvPath;
      system = drv.system;
      outputs = builtins.listToAttrs (map (o: { name = o; value = drv.${o}.outPath; }) outputNames);
      meta = jobMeta drv;
      inherit isAggregate;
      constituents =
        if !isAggregate then [ ]
        else if !(drv ? constituents) then throw "aggregate job ${pathName path} has no constituents attribute"
        else map constituentRef drv.constituents;
    };

  failed = path: message: marker "E" (builtins.toJSON { attr = pathName path; inherit message; }) 0;

  job = path: drv:
    let
      info = jobInfo path drv;
      forced = builtins.tryEval (builtins.deepSeq info info);
    in
    if forced.success then marker "J" (builtins.toJSON forced.value) 1
    else failed path null;

  # Visits the node at `path`; `resume` is null, or the path after which the walk resumes.
  walk = path: resume: raw:
    marker "B" (pathName path) (
      let called = builtins.tryEval (autoCall raw);
      in
      if !called.success then failed path null
      else
        let v = called.value; in
        if v == null then 0
        else if isDerivation v then job path v
        else if builtins.isAttrs v then walkSet path resume v
        else failed path "unsupported value: a ${builtins.typeOf v}"
    );

  walkSet = path: resume: set:
    let
      depth = builtins.length path;
      resumeName = if resume == null then null else builtins.elemAt resume depth;
      lastOfResume = resume != null && builtins.length resume == depth + 1;
      visit = count: name:
        let childPath = path ++ [ name ]; in
        if resumeName != null && name < resumeName then count
        else if resumeName != null && name == resumeName then
          (if lastOfResume then count else count + walk childPath resume set.${name})
        else if name == "recurseForDerivations" then count
        else if builtins.match ".*[.].*" name != null then
          count + failed childPath "skipping job with illegal name '${name}' (attribute names may not contain dots)"
        else count + walk childPath null set.${name};
    in
    builtins.foldl' visit 0 (builtins.attrNames set);

  flakeRoot =
    let
      flake = builtins.getFlake cfg.flakeRef;
      system = builtins.currentSystem;
      attrPath = cfg.attrPath;
    in
    if attrPath == [ ] || attrPath == [ "hydraJobs" ] then
      (if flake ? hydraJobs then flake.hydraJobs
       else if flake ? checks && flake.checks ? ${system} then flake.checks.${system}
       else throw "the flake ${cfg.flakeRef} has neither hydraJobs nor checks.${system}")
    else
      builtins.foldl'
        (v: name: if v ? ${name} then v.${name} else throw "the flake ${cfg.flakeRef} has no attribute ${pathName attrPath}")
        flake attrPath;

  root = if cfg.flakeMode then flakeRoot else import cfg.file;

  # `explain`: evaluate one node without tryEval, so that Nix prints the error message a tryEval swallowed.
  explain = path:
    let
      node = builtins.foldl' (v: name: (autoCall v).${name}) root path;
      v = autoCall node;
    in
    if isDerivation v then builtins.deepSeq (jobInfo path v) 0
    else builtins.seq (builtins.attrNames v) 0;
in
if cfg.explain != null then explain cfg.explain
else walk [ ] cfg.resumeAfter root
