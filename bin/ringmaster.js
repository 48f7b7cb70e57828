#!/usr/bin/env node
// Entry point of the `ringmaster` CLI: loads the TypeScript sources through tsx.
'use strict';
require('tsx/cjs');
require('../cli/main.ts').main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
