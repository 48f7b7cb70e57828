#!/usr/bin/env node
// `npm test`: starts the real services once, then runs node's test runner over test/**/*.test.ts.
'use strict';
require('tsx/cjs');
require('../test/support/run.ts')
  .runTests(process.argv.slice(2))
  .then((code) => process.exit(code))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
