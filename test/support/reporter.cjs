'use strict';
// A tiny mocha reporter: spec-style lines while running, then the closing line `N passed, N failed`.
const Mocha = require('mocha');
const { EVENT_TEST_PASS, EVENT_TEST_FAIL, EVENT_TEST_PENDING, EVENT_RUN_END, EVENT_SUITE_BEGIN } = Mocha.Runner.constants;

class CountReporter extends Mocha.reporters.Base {
  constructor(runner, options) {
    super(runner, options);
    let passed = 0, failed = 0, skipped = 0;
    const failures = [];
    runner.on(EVENT_SUITE_BEGIN, (suite) => { if (suite.title) console.log(`  ${suite.fullTitle()}`); });
    runner.on(EVENT_TEST_PASS, (test) => { passed++; console.log(`    ok   ${test.title} (${test.duration}ms)`); });
    runner.on(EVENT_TEST_PENDING, (test) => { skipped++; console.log(`    skip ${test.title}`); });
    runner.on(EVENT_TEST_FAIL, (test, err) => {
      failed++; failures.push({ test, err });
      console.log(`    FAIL ${test.title}: ${err && err.message}`);
    });
    runner.once(EVENT_RUN_END, () => {
      for (const { test, err } of failures) {
        console.log(`\n--- ${test.fullTitle()}\n${(err && err.stack) || err}`);
      }
      console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ''));
    });
  }
}
module.exports = CountReporter;
