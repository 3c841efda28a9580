// Runs before `npm test` (package.json "pretest"): on a Node older than the project needs, the
// suite would fail deep inside a test; stop at once and say what to do instead. Plain CommonJS,
// so that an old Node can run it.
"use strict";

// 22.10: KeyObject.toCryptoKey, which the test harness's tls stand-in uses, arrived there.
const REQUIRED = { major: 22, minor: 10 };

/** The problem with running on `version` (e.g. "20.11.1"), or undefined when it is recent enough. */
function nodeVersionProblem(version) {
  const [major, minor] = String(version).split(".").map(Number);
  if (major > REQUIRED.major || (major === REQUIRED.major && minor >= REQUIRED.minor))
    return undefined;
  return [
    `bookapi-mesh needs Node.js ${REQUIRED.major}.${REQUIRED.minor} or later; this is Node.js ${version}.`,
    "Use the version in .nvmrc (nvm use), or run the tests on a Node fetched from the npm registry:",
    "  npx -y -p node@24 -- npm test",
  ].join("\n");
}

module.exports = { nodeVersionProblem, REQUIRED };

if (require.main === module) {
  const problem = nodeVersionProblem(process.versions.node);
  if (problem) {
    console.error(problem);
    process.exit(1);
  }
}
